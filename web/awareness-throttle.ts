/**
 * At most one awareness message this often (20 a second). A selection dragged on a 144 Hz screen moves
 * the cursor 144 times a second, past the messages a server takes from one socket (100 a second by
 * default, and a close for going over it is final).
 */
export const AWARENESS_INTERVAL_MS = 50

/**
 * Collects the awareness clients changed here and hands them to `send` at most once per
 * AWARENESS_INTERVAL_MS: the first change at once, the changes made meanwhile together at the end of the
 * interval.
 */
export class AwarenessThrottle {
  readonly #send: (clients: number[]) => void
  /** Clients changed since the last message, waiting for the timer. */
  readonly #changed = new Set<number>()
  #timer: ReturnType<typeof setTimeout> | null = null

  constructor (send: (clients: number[]) => void) {
    this.#send = send
  }

  changed (clients: Iterable<number>): void {
    for (const id of clients) this.#changed.add(id)
    if (this.#timer === null) this.#flush()
  }

  #flush = (): void => {
    this.#timer = null
    if (this.#changed.size === 0) return
    const changed = [...this.#changed]
    this.#changed.clear()
    this.#send(changed)
    this.#timer = setTimeout(this.#flush, AWARENESS_INTERVAL_MS)
    // In Node (tests, bots), a pending message must not keep the process alive.
    ;(this.#timer as { unref?: () => void }).unref?.()
  }

  /** Drops what is waiting and stops the timer. */
  close (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#changed.clear()
  }
}
