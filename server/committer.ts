import type { Logger } from 'pino'
import type { Committable, CommitQueue } from './room-writes.js'
import type { PendingUpdate } from './pending-updates.js'
import type { AppendEntry, Storage } from './storage/storage.js'

/**
 * Group commit: every update submitted in one turn of the event loop, in any room, goes to storage in
 * one transaction, so durability costs one commit (one fsync) per batch rather than per update. While a
 * commit is in flight the next batch gathers; commits never overlap, so each room's updates are stored
 * and then applied in the order they arrived.
 */
export class GroupCommitter implements CommitQueue {
  readonly #storage: Storage
  readonly #log: Logger
  readonly #onCommit: (durationMs: number, updates: number, error: Error | null) => void
  readonly #onApplied: (room: Committable, durationMs: number) => void
  #scheduled = new Set<Committable>()
  #timer: NodeJS.Immediate | null = null
  #running: Promise<void> | null = null

  /**
   * `onCommit` hears of every storage commit; `onApplied` of every room whose committed batch was then
   * applied and sent (metrics, webhooks). Both run on the commit path: they must be cheap and not throw.
   */
  constructor (
    storage: Storage,
    log: Logger,
    onCommit: (durationMs: number, updates: number, error: Error | null) => void = () => {},
    onApplied: (room: Committable, durationMs: number) => void = () => {},
  ) {
    this.#storage = storage
    this.#log = log
    this.#onCommit = onCommit
    this.#onApplied = onApplied
  }

  schedule (room: Committable): void {
    this.#scheduled.add(room)
    if (this.#running === null && this.#timer === null) this.#timer = setImmediate(this.#flush)
  }

  /** Resolves when nothing is scheduled or in flight. */
  async idle (): Promise<void> {
    while (this.#running !== null || this.#timer !== null) {
      if (this.#running !== null) await this.#running
      else await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  #flush = (): void => {
    this.#timer = null
    const rooms = [...this.#scheduled]
    this.#scheduled.clear()
    this.#running = this.#commit(rooms).finally(() => {
      this.#running = null
      if (this.#scheduled.size > 0) this.#timer = setImmediate(this.#flush)
    })
  }

  async #commit (scheduled: Committable[]): Promise<void> {
    const rooms: Committable[] = []
    const batches: PendingUpdate[][] = []
    for (const room of scheduled) {
      const batch = room.takePending()
      if (batch.length === 0) continue
      rooms.push(room)
      batches.push(batch)
    }
    const entries: AppendEntry[] = []
    for (let i = 0; i < rooms.length; i++) {
      const room = rooms[i]!
      // Admitted against what this instance holds: storage refuses the room if another committed under
      // the same ids since.
      const after = room.committedThrough
      for (const item of batches[i]!) entries.push({ room: room.name, update: item.update, claims: item.claims, ...(after === undefined ? {} : { after }) })
    }
    if (entries.length === 0) return
    const started = performance.now()
    let failure: Error | null = null
    let stored: ReadonlyMap<string, number | null> = new Map()
    try {
      stored = await this.#storage.append(entries)
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error))
      this.#log.error({ err: failure, updates: entries.length, rooms: rooms.length }, 'storage commit failed; updates were not applied')
    }
    this.#onCommit(performance.now() - started, entries.length, failure)
    for (let i = 0; i < rooms.length; i++) {
      const room = rooms[i]!
      const batch = batches[i]!
      try {
        const seq = stored.get(room.name)
        if (failure !== null) room.commitFailed(batch, failure)
        else if (seq === null || seq === undefined) room.refused(batch)
        else {
          const applying = performance.now()
          room.committed(batch, seq)
          this.#onApplied(room, performance.now() - applying)
        }
      } catch (error) {
        this.#log.error({ err: error, room: room.name }, 'applying committed updates failed')
      }
    }
  }
}
