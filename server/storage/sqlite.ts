import { existsSync, mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { SnapshotMerger } from './merger.js'
import type { AppendEntry, Storage, StoredRoom } from './storage.js'

export interface SqliteStorageOptions {
  /** Database file; its folder is created. `:memory:` for a throwaway database. */
  readonly file: string
  /**
   * `full` (default) syncs the WAL on every commit, so a commit survives a power cut; `normal` syncs
   * only at checkpoints: it survives a crash of the process, not of the machine.
   */
  readonly synchronous?: 'full' | 'normal'
}

/**
 * The embedded default: one SQLite file in WAL mode. better-sqlite3 is synchronous, so a commit blocks the
 * event loop for its duration; group commit keeps that to one commit per turn of the loop.
 */
export class SqliteStorage implements Storage {
  readonly #db: Database.Database
  readonly #insert: Database.Statement<[string, Uint8Array]>
  readonly #appendAll: (entries: readonly AppendEntry[]) => void
  readonly #readForCompaction: (room: string) => { updates: Uint8Array[], lastId: number } | null
  readonly #replaceLog: (room: string, snapshot: Uint8Array, lastId: number) => void
  readonly #merger = new SnapshotMerger()
  /** The compaction running for each room: a room's compactions run one after another. */
  readonly #compactions = new Map<string, Promise<void>>()
  readonly #selectSnapshot: Database.Statement<[string], { data: Buffer }>
  readonly #selectLog: Database.Statement<[string], { id: number, data: Buffer }>
  readonly #exists: Database.Statement<[string, string], { one: number }>

  constructor (options: SqliteStorageOptions) {
    if (options.file !== ':memory:') makeDirectory(dirname(options.file))
    const db = this.#db = new Database(options.file)
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`)
    db.pragma('busy_timeout = 5000')
    db.exec(`
      CREATE TABLE IF NOT EXISTS updates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room TEXT NOT NULL,
        data BLOB NOT NULL
      );
      CREATE INDEX IF NOT EXISTS updates_by_room ON updates (room, id);
      CREATE TABLE IF NOT EXISTS snapshots (
        room TEXT PRIMARY KEY,
        data BLOB NOT NULL,
        compacted_at INTEGER NOT NULL
      );
    `)
    this.#insert = db.prepare('INSERT INTO updates (room, data) VALUES (?, ?)')
    this.#selectSnapshot = db.prepare('SELECT data FROM snapshots WHERE room = ?')
    this.#selectLog = db.prepare('SELECT id, data FROM updates WHERE room = ? ORDER BY id')
    this.#exists = db.prepare(`SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM snapshots WHERE room = ?)
      OR EXISTS (SELECT 1 FROM updates WHERE room = ?)`)
    const upsertSnapshot = db.prepare(`INSERT INTO snapshots (room, data, compacted_at) VALUES (?, ?, ?)
      ON CONFLICT (room) DO UPDATE SET data = excluded.data, compacted_at = excluded.compacted_at`)
    const deleteUpTo = db.prepare('DELETE FROM updates WHERE room = ? AND id <= ?')

    this.#appendAll = db.transaction((entries: readonly AppendEntry[]) => {
      for (const { room, update } of entries) this.#insert.run(room, update)
    })
    this.#readForCompaction = db.transaction((room: string) => {
      const rows = this.#selectLog.all(room)
      const last = rows.at(-1)
      if (last === undefined) return null
      const snapshot = this.#selectSnapshot.get(room)
      const updates: Uint8Array[] = rows.map((row) => row.data)
      if (snapshot !== undefined) updates.unshift(snapshot.data)
      return { updates, lastId: last.id }
    })
    this.#replaceLog = db.transaction((room: string, snapshot: Uint8Array, lastId: number) => {
      upsertSnapshot.run(room, snapshot, Date.now())
      deleteUpTo.run(room, lastId)
    })
  }

  async load (room: string): Promise<StoredRoom> {
    const snapshot = this.#selectSnapshot.get(room)
    const log = this.#selectLog.all(room)
    const updates: Uint8Array[] = log.map((row) => row.data)
    if (snapshot !== undefined) updates.unshift(snapshot.data)
    return { updates, logRows: log.length, seq: 0 }
  }

  /** One instance owns the file: nothing to check, and no commit sequence is kept (see `Storage.heads`). */
  async append (entries: readonly AppendEntry[]): Promise<ReadonlyMap<string, number | null>> {
    if (entries.length > 0) this.#appendAll(entries)
    return new Map(entries.map((entry) => [entry.room, 0]))
  }

  /**
   * Reads the room's snapshot and log, merges them on a worker thread (a big document takes tens of
   * milliseconds: the sockets keep being served meanwhile), then replaces the snapshot and deletes the
   * rows merged, in one transaction. Rows appended meanwhile get higher ids and stay. Compactions of one
   * room are queued, so the snapshot replaced is always the one that was merged.
   */
  compact (room: string): Promise<void> {
    const run = (this.#compactions.get(room) ?? Promise.resolve()).then(() => this.#compactOnce(room))
    const settled = run.then(() => {}, () => {})
    this.#compactions.set(room, settled)
    void settled.then(() => { if (this.#compactions.get(room) === settled) this.#compactions.delete(room) })
    return run
  }

  async #compactOnce (room: string): Promise<void> {
    const read = this.#readForCompaction(room)
    if (read === null) return
    const snapshot = await this.#merger.merge(read.updates)
    this.#replaceLog(room, snapshot, read.lastId)
  }

  async has (room: string): Promise<boolean> {
    return this.#exists.get(room, room) !== undefined
  }

  async check (): Promise<void> {
    this.#db.prepare('SELECT 1').get()
  }

  /** Waits for running compactions, then closes the database. */
  async close (): Promise<void> {
    await Promise.all(this.#compactions.values())
    await this.#merger.close()
    if (this.#db.open) this.#db.close()
  }
}

/**
 * Creates `dir` and its missing parents, one level at a time: a recursive mkdir retries for ever where the
 * kernel refuses a level (under /proc), and this fails at once with the level it could not make.
 */
const makeDirectory = (dir: string): void => {
  const missing: string[] = []
  for (let at = resolve(dir); !existsSync(at) && at !== dirname(at); at = dirname(at)) missing.unshift(at)
  for (const level of missing) mkdirSync(level)
}
