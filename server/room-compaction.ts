import type { Logger } from 'pino'
import type { Storage } from './storage/storage.js'

/**
 * After a compaction failed, the next is tried this much later, doubling per failure up to the maximum:
 * a log that cannot be merged (an unreadable row) would otherwise be read whole after every commit.
 */
const RETRY_MS = 60_000
const RETRY_MAX_MS = 60 * 60_000

/**
 * When one room's log is merged into its snapshot: once `afterRows` rows have gathered, one compaction at a
 * time, in the turn after the commit that passed the mark, and later after a failure.
 */
export class RoomCompaction {
  readonly #room: string
  readonly #storage: Storage
  readonly #log: Logger
  readonly #afterRows: number
  /** Log rows stored since the last compaction, as far as this room knows. */
  #rows = 0
  #running = false
  #failures = 0
  /** No compaction is scheduled before this time (ms since the epoch) after a failure. */
  #notBefore = 0

  constructor (room: string, storage: Storage, log: Logger, afterRows: number) {
    this.#room = room
    this.#storage = storage
    this.#log = log
    this.#afterRows = afterRows
  }

  /** Log rows waiting to be compacted. */
  get rows (): number {
    return this.#rows
  }

  /** Counts `rows` more log rows (loaded or just stored), and schedules a compaction past the mark. */
  stored (rows: number): void {
    this.#rows += rows
    if (this.#rows < this.#afterRows || this.#running || Date.now() < this.#notBefore) return
    this.#running = true
    setImmediate(() => { void this.run() })
  }

  /** Merges the room's log into its snapshot now. Safe to run at any time, on any instance. */
  async run (): Promise<void> {
    this.#running = true
    try {
      const rows = this.#rows
      await this.#storage.compact(this.#room)
      this.#rows = Math.max(0, this.#rows - rows)
      this.#failures = 0
      this.#notBefore = 0
    } catch (error) {
      const retryInMs = Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** this.#failures++)
      this.#notBefore = Date.now() + retryInMs
      this.#log.warn({ room: this.#room, err: error, retryInMs }, 'compaction failed; the log grows until a later one succeeds')
    } finally {
      this.#running = false
    }
  }
}
