/** Shared by every bucket: a default written inline would be one closure per bucket (one per socket). */
const performanceNow = (): number => performance.now()

/**
 * A token bucket: `rate` tokens a second, holding at most `burst`. One message costs one token, so a
 * client may send `burst` messages at once (a paste, a reconnect's catch-up) and `rate` a second after.
 */
export class TokenBucket {
  readonly #rate: number
  readonly #burst: number
  readonly #now: () => number
  #tokens: number
  #last: number

  /** `now` returns milliseconds; injectable for tests. */
  constructor (rate: number, burst: number, now: () => number = performanceNow) {
    if (!Number.isFinite(rate) || rate <= 0) throw new RangeError(`rate must be > 0, got ${rate}`)
    if (!Number.isFinite(burst) || burst < 1) throw new RangeError(`burst must be >= 1, got ${burst}`)
    this.#rate = rate
    this.#burst = burst
    this.#now = now
    this.#tokens = burst
    this.#last = now()
  }

  /** Takes one token; false when the bucket is empty (the caller is over its rate). */
  take (): boolean {
    const now = this.#now()
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate)
    this.#last = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }
}
