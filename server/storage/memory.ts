import { mergeToSnapshot, type AppendEntry, type Storage, type StoredRoom } from './storage.js'

/** Keeps everything in this process: for tests and for embedders that persist elsewhere. */
export class MemoryStorage implements Storage {
  readonly #snapshots = new Map<string, Uint8Array>()
  readonly #logs = new Map<string, Uint8Array[]>()

  async load (room: string): Promise<StoredRoom> {
    const snapshot = this.#snapshots.get(room)
    const log = this.#logs.get(room) ?? []
    return { updates: snapshot === undefined ? [...log] : [snapshot, ...log], logRows: log.length }
  }

  async append (entries: readonly AppendEntry[]): Promise<void> {
    for (const { room, update } of entries) {
      let log = this.#logs.get(room)
      if (log === undefined) this.#logs.set(room, log = [])
      log.push(update.slice())
    }
  }

  async compact (room: string): Promise<void> {
    const log = this.#logs.get(room)
    if (log === undefined || log.length === 0) return
    const snapshot = this.#snapshots.get(room)
    const read = log.length
    this.#snapshots.set(room, mergeToSnapshot(snapshot === undefined ? log : [snapshot, ...log]))
    log.splice(0, read)
  }

  async has (room: string): Promise<boolean> {
    return this.#snapshots.has(room) || (this.#logs.get(room)?.length ?? 0) > 0
  }

  async check (): Promise<void> {}
  async close (): Promise<void> {}
}
