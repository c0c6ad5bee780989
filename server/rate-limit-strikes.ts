/**
 * What going over the message rate costs a client.
 *
 * A stock y-websocket client treats 4400-4499 as final: closed with one, it is gone until its page is
 * reloaded. A limit that misjudged an honest client would be a permanent outage for that person, so the
 * first breaches close with a transient code (4529) and the client comes back, but not at once: for a
 * while its address is refused new sockets (HTTP 429 with Retry-After) and the stock client backs off
 * (up to 2.5 s between attempts). Each breach doubles that pause. Only a socket that breaches again and
 * again (FINAL_STRIKE times from one address within STRIKE_WINDOW_MS) is closed with 4429, final: that is
 * a script, not a person, and reconnecting it would cost the server more than refusing it.
 *
 * Other sockets of the same address (people behind one NAT) are never closed for it; at worst they wait
 * out the pause when they reconnect.
 */

/** Breaches are forgotten once an address has had none for this long. */
export const STRIKE_WINDOW_MS = 10 * 60_000
/** The breach within the window that is answered with the final close. */
export const FINAL_STRIKE = 4
/** The pause after the first breach; it doubles with each further one. */
export const FIRST_PAUSE_MS = 1000

const performanceNow = (): number => performance.now()

interface Strikes {
  count: number
  /** When the last breach happened (ms, on the clock given). */
  at: number
}

export class RateLimitStrikes {
  readonly #now: () => number
  readonly #byAddress = new Map<string, Strikes>()
  #sweptAt: number

  /** `now` returns milliseconds; injectable for tests. */
  constructor (now: () => number = performanceNow) {
    this.#now = now
    this.#sweptAt = now()
  }

  /** Addresses with breaches remembered now. */
  get size (): number {
    return this.#byAddress.size
  }

  /** Records a breach by a socket of `address`: `final` when it is the FINAL_STRIKE-th in the window. */
  strike (address: string): 'transient' | 'final' {
    const now = this.#now()
    this.#sweep(now)
    const known = this.#byAddress.get(address)
    const strikes = known !== undefined && now - known.at < STRIKE_WINDOW_MS ? known : { count: 0, at: now }
    strikes.count++
    strikes.at = now
    this.#byAddress.set(address, strikes)
    return strikes.count >= FINAL_STRIKE ? 'final' : 'transient'
  }

  /** How long `address` must still wait before it may open a socket (ms); 0 when it may now. */
  pause (address: string): number {
    const strikes = this.#byAddress.get(address)
    if (strikes === undefined) return 0
    const pause = FIRST_PAUSE_MS * 2 ** (Math.min(strikes.count, FINAL_STRIKE) - 1)
    return Math.max(0, strikes.at + pause - this.#now())
  }

  /** Memory follows the addresses that breached lately, not every one that ever did. */
  #sweep (now: number): void {
    if (now - this.#sweptAt < STRIKE_WINDOW_MS) return
    this.#sweptAt = now
    for (const [address, strikes] of this.#byAddress) if (now - strikes.at >= STRIKE_WINDOW_MS) this.#byAddress.delete(address)
  }
}
