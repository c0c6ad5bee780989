/**
 * One instance-wide budget for the bytes held in input that has not arrived in full: unfinished WebSocket
 * messages (fragments, and frames still arriving) and HTTP bodies being read. Each piece of input is
 * bounded by `maxMessageBytes` alone, so without a budget of the whole, a few hundred sockets each holding
 * an unfinished 16 MiB message would hold gigabytes. Past the budget, new large input is refused (1013,
 * HTTP 503); small input always passes, so that honest clients keep editing while an attacker holds it.
 */

/** Input up to this size is never refused for the budget: an edit, a poll, a cursor. */
export const SMALL_INPUT_BYTES = 64 * 1024

export class InputBudget {
  readonly limit: number
  #held = 0

  constructor (limit: number) {
    if (!Number.isFinite(limit) || limit < SMALL_INPUT_BYTES) throw new RangeError(`the input budget must be at least ${SMALL_INPUT_BYTES} bytes, got ${limit}`)
    this.limit = limit
  }

  /** Bytes held now in unfinished input, over the whole instance. */
  get held (): number {
    return this.#held
  }

  /**
   * Moves what one piece of input holds from `from` to `to` bytes. Refuses (returning false, and the
   * input still counts `from`) growth that would pass the limit, unless `to` is small.
   */
  resize (from: number, to: number): boolean {
    if (to > from && to > SMALL_INPUT_BYTES && this.#held - from + to > this.limit) return false
    this.#held += to - from
    return true
  }
}
