/**
 * A room's awareness changes, sent as at most one frame per interval.
 *
 * Stock y-websocket clients send back every awareness change they receive, as one message per frame
 * received. Sent one frame per change, a room of N clients moving cursors at r Hz has each client
 * receive and echo N × r frames a second: 30 clients at 5 Hz pass the per-socket message limit. Merged
 * into one frame per interval, each client receives (and echoes) at most 1000 / interval frames a
 * second, whatever the size of the room; the others' states in a frame are their latest ones.
 *
 * The first change after a quiet interval goes out at the end of its task, so a quiet room adds no
 * delay; later ones wait for the interval to end. Changes made on this instance (and only those) are
 * published to the others the same way, one bus message per interval: what came from the bus is never
 * published again.
 */
import * as awarenessProtocol from 'y-protocols/awareness'

/**
 * Default: at most 20 awareness frames a second per room, and at most 50 ms added to a cursor move. 25 ms
 * was measured too (bench/RESULTS.md, 2026-12-06): at 200 clients p50 fell by ~10 ms and p99 did not
 * measurably on the shared machine, the server's CPU rose by a fifth, and every client's frames and
 * echoes doubled to 40 a second, and with them a long-polling client's requests (one per frame): six
 * pollers behind one address passed its 200 requests a second.
 */
export const AWARENESS_INTERVAL_MS = 50

/** Where a merged change goes. */
export interface CoalescedSink {
  /** `update` (an awareness update of every state changed since the last flush) to every local peer. */
  broadcast (update: Uint8Array): void
  /** `update` (the states changed here since the last flush) to other instances. */
  publish (update: Uint8Array): void
}

export class AwarenessCoalescing {
  readonly #awareness: awarenessProtocol.Awareness
  readonly #sink: CoalescedSink
  readonly #intervalMs: number
  /** Client ids changed since the last flush, whatever the origin. */
  #changed = new Set<number>()
  /** The subset of #changed whose latest change was made here (by a client of this instance). */
  #local = new Set<number>()
  #timer: NodeJS.Timeout | null = null
  #queued = false
  #flushedAt = -Infinity
  #destroyed = false

  constructor (awareness: awarenessProtocol.Awareness, sink: CoalescedSink, intervalMs: number = AWARENESS_INTERVAL_MS) {
    if (!Number.isFinite(intervalMs) || intervalMs < 0) throw new RangeError(`awareness interval must be >= 0 ms, got ${intervalMs}`)
    this.#awareness = awareness
    this.#sink = sink
    this.#intervalMs = intervalMs
  }

  /** Records changed states; `local` when the change was made on this instance (to publish). */
  changed (clients: readonly number[], local: boolean): void {
    if (this.#destroyed || clients.length === 0) return
    for (const id of clients) {
      this.#changed.add(id)
      if (local) this.#local.add(id)
      else this.#local.delete(id)
    }
    if (this.#timer !== null || this.#queued) return
    const wait = this.#flushedAt + this.#intervalMs - performance.now()
    if (wait <= 0) {
      this.#queued = true
      queueMicrotask(this.#flushQueued)
    } else {
      this.#timer = setTimeout(this.#flushTimed, wait)
    }
  }

  /**
   * Sends what is waiting now: before a frame that must not overtake earlier changes (a state the room
   * raised, sent at once to its sender in a frame of its own).
   */
  flush (): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
    }
    if (this.#destroyed || this.#changed.size === 0) return
    const { meta } = this.#awareness
    const changed = [...this.#changed].filter((id) => meta.has(id))
    const local = [...this.#local].filter((id) => meta.has(id))
    this.#changed.clear()
    this.#local.clear()
    this.#flushedAt = performance.now()
    if (changed.length > 0) this.#sink.broadcast(awarenessProtocol.encodeAwarenessUpdate(this.#awareness, changed))
    if (local.length > 0) this.#sink.publish(awarenessProtocol.encodeAwarenessUpdate(this.#awareness, local))
  }

  destroy (): void {
    this.#destroyed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#changed.clear()
    this.#local.clear()
  }

  #flushQueued = (): void => {
    this.#queued = false
    this.flush()
  }

  #flushTimed = (): void => {
    this.#timer = null
    // A timer counts from the event loop's clock, read at the start of the turn that set it: after a
    // long turn it fires up to that much early (1-2 ms in the presence benchmark), and the interval holds.
    const wait = this.#flushedAt + this.#intervalMs - performance.now()
    if (wait > 0) this.#timer = setTimeout(this.#flushTimed, wait)
    else this.flush()
  }
}
