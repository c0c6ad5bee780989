/**
 * The one check of a numeric option, for the server's options (options.ts) and everything else that takes
 * a number (the rate limits, the Redis bus, the web provider): an impossible value throws an error that
 * names the option, as ws does. No imports, so that the browser bundle can use it too.
 */

/**
 * `value`, or a TypeError when it is not a number and a RangeError when it is not a whole number from
 * `min` to `max` (any number with `whole: false`); both name the option.
 */
export const checkNumber = (name: string, value: unknown, range: { readonly min: number, readonly max?: number, readonly whole?: boolean }): number => {
  const { min, max = Number.MAX_SAFE_INTEGER, whole = true } = range
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`)
  if (Number.isNaN(value) || value < min || value > max || (whole && !Number.isInteger(value))) {
    throw new RangeError(`${name} must be a ${whole ? 'whole number' : 'number'} from ${min} to ${max}, got ${value}`)
  }
  return value
}
