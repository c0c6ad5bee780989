import { checkNumber } from './option-check.js'

/** Shared by every bucket: a default written inline would be one closure per bucket (one per socket). */
const performanceNow = (): number => performance.now()

const checkRate = (rate: number, burst: number): void => {
  checkNumber('rate', rate, { min: Number.MIN_VALUE, whole: false })
  checkNumber('burst', burst, { min: 1, whole: false })
}

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
    checkRate(rate, burst)
    this.#rate = rate
    this.#burst = burst
    this.#now = now
    this.#tokens = burst
    this.#last = now()
  }

  /** When a token was last asked for (ms, on the bucket's clock). */
  get lastTakeAt (): number {
    return this.#last
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

/**
 * One token bucket per client address (long-poll requests, which have no socket to hold a bucket). A
 * bucket left alone long enough to refill is forgotten, so memory follows the addresses seen lately,
 * not every address ever seen.
 */
export class AddressRateLimit {
  readonly #now: () => number
  readonly #newBucket: () => TokenBucket
  readonly #buckets = new Map<string, TokenBucket>()
  /** Any bucket unused this long is full again. */
  readonly #refillMs: number
  #sweptAt: number

  constructor (rate: number, burst: number, now: () => number = performanceNow) {
    checkRate(rate, burst)
    this.#now = now
    this.#newBucket = () => new TokenBucket(rate, burst, now)
    this.#refillMs = (burst / rate) * 1000
    this.#sweptAt = now()
  }

  /** Addresses with a bucket now. */
  get size (): number {
    return this.#buckets.size
  }

  /** Takes one token from `address`'s bucket; false when it is empty. */
  take (address: string): boolean {
    const now = this.#now()
    if (now - this.#sweptAt >= this.#refillMs) {
      this.#sweptAt = now
      for (const [key, bucket] of this.#buckets) if (now - bucket.lastTakeAt >= this.#refillMs) this.#buckets.delete(key)
    }
    let bucket = this.#buckets.get(address)
    if (bucket === undefined) this.#buckets.set(address, bucket = this.#newBucket())
    return bucket.take()
  }
}
