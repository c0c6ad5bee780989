/**
 * Waits until `condition` returns a truthy value and returns it; fails with `message` after `timeoutMs`.
 * The only way tests wait: never a bare sleep.
 */
export const waitFor = async <T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 10, message = 'condition' }: { timeoutMs?: number, intervalMs?: number, message?: string } = {},
): Promise<NonNullable<T>> => {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown = null
  for (;;) {
    try {
      const value = await condition()
      if (value) return value as NonNullable<T>
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}${detail}`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** Resolves with the first emission of `event` on `emitter`, or fails after `timeoutMs`. */
export const once = <T = unknown>(
  emitter: { once (event: string, listener: (...args: any[]) => void): unknown },
  event: string,
  timeoutMs = 10_000,
): Promise<T> => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}"`)), timeoutMs)
  emitter.once(event, (value: T) => {
    clearTimeout(timer)
    resolve(value)
  })
})
