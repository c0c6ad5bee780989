import type { StoredRoom } from './storage/storage.js'

export interface CommitSequenceOptions {
  /** How long a commit known to exist may take to arrive on the bus before storage is read for it. */
  readonly graceMs: number
  /** Reads the room's commits after `after` (`Storage.load`). */
  readonly read: (after: number) => Promise<StoredRoom>
  /** Applies what a catch-up read brought to the room's document (and so to its peers). */
  readonly apply: (updates: readonly Uint8Array[]) => void
  /** Hears of a catch-up read that failed; the next commit known to exist tries again. */
  readonly failed: (error: unknown) => void
}

/**
 * Which of a room's commits (numbered 1, 2, ... by shared storage) the room's document holds, and the
 * catch-up reads of the ones it lacks.
 *
 * Commits reach a room from its own group commits, from the bus (each update message carries its commit's
 * number) and from catch-up reads. The bus may lose a message (a publish that failed, an instance killed
 * between its commit and its publish, a Redis restart), and messages of different instances may arrive out
 * of commit order. So a commit the room knows exists but lacks (a later one arrived, or the periodic check
 * of storage's latest commits says so) is given `graceMs` to arrive; if it has not by then, the room reads
 * storage from the last commit it holds in order. Only a lost message costs a read.
 */
export class CommitSequence {
  /** Every commit up to this one is in the document. */
  #applied = 0
  /** Commits past `#applied` that are in the document too. */
  readonly #above = new Set<number>()
  /** The newest commit known to exist that the document may lack, checked when the timer fires. */
  #awaited = 0
  #timer: NodeJS.Timeout | null = null
  #reading: Promise<void> | null = null
  #readAgain = false
  #destroyed = false
  readonly #options: CommitSequenceOptions

  constructor (options: CommitSequenceOptions) {
    this.#options = options
  }

  /** The commit the document holds together with every commit before it. */
  get applied (): number {
    return this.#applied
  }

  /** Whether commit `seq` is in the document. */
  has (seq: number): boolean {
    return seq <= this.#applied || this.#above.has(seq)
  }

  /** Commit `seq` is in the document. */
  holds (seq: number): void {
    if (seq <= this.#applied) return
    this.#above.add(seq)
    while (this.#above.delete(this.#applied + 1)) this.#applied++
    // Held past a hole: the commits before it exist.
    this.exists(seq - 1)
  }

  /** Commits up to `seq` exist: if the document still lacks some of them after the grace period, catch up. */
  exists (seq: number): void {
    if (seq <= this.#applied || this.#destroyed) return
    this.#awaited = Math.max(this.#awaited, seq)
    if (this.#timer !== null) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      if (this.#applied < this.#awaited) this.catchUp().catch(this.#options.failed)
    }, this.#options.graceMs)
    this.#timer.unref()
  }

  /** The document holds every commit up to `seq` (it was loaded or read with them). */
  caughtUp (seq: number): void {
    if (seq <= this.#applied) return
    this.#applied = seq
    for (const above of this.#above) if (above <= seq) this.#above.delete(above)
    while (this.#above.delete(this.#applied + 1)) this.#applied++
  }

  /**
   * Reads the commits after the last one held in order and applies them. One read at a time: a request
   * while one runs makes it read once more when it ends. Rejects if storage could not be read.
   */
  catchUp (): Promise<void> {
    if (this.#reading !== null) {
      this.#readAgain = true
      return this.#reading
    }
    this.#reading = (async () => {
      try {
        do {
          this.#readAgain = false
          const stored = await this.#options.read(this.#applied)
          if (this.#destroyed) return
          this.#options.apply(stored.updates)
          this.caughtUp(stored.seq)
        } while (this.#readAgain && !this.#destroyed)
      } finally {
        this.#reading = null
      }
    })()
    return this.#reading
  }

  destroy (): void {
    this.#destroyed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }
}
