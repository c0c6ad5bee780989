import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { mergeToSnapshot, type AppendEntry, type Storage, type StoredRoom } from './storage.js'

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
  readonly #compactRoom: (room: string) => void
  readonly #selectSnapshot: Database.Statement<[string], { data: Buffer }>
  readonly #selectLog: Database.Statement<[string], { id: number, data: Buffer }>
  readonly #exists: Database.Statement<[string, string], { one: number }>

  constructor (options: SqliteStorageOptions) {
    if (options.file !== ':memory:') mkdirSync(dirname(options.file), { recursive: true })
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
    // One synchronous transaction: nothing can be appended between the read and the delete, so the
    // rows deleted are exactly the rows merged.
    this.#compactRoom = db.transaction((room: string) => {
      const rows = this.#selectLog.all(room)
      const last = rows.at(-1)
      if (last === undefined) return
      const snapshot = this.#selectSnapshot.get(room)
      const updates = rows.map((row) => row.data as Uint8Array)
      if (snapshot !== undefined) updates.unshift(snapshot.data)
      upsertSnapshot.run(room, mergeToSnapshot(updates), Date.now())
      deleteUpTo.run(room, last.id)
    })
  }

  async load (room: string): Promise<StoredRoom> {
    const snapshot = this.#selectSnapshot.get(room)
    const log = this.#selectLog.all(room)
    const updates: Uint8Array[] = log.map((row) => row.data)
    if (snapshot !== undefined) updates.unshift(snapshot.data)
    return { updates, logRows: log.length }
  }

  async append (entries: readonly AppendEntry[]): Promise<void> {
    if (entries.length > 0) this.#appendAll(entries)
  }

  async compact (room: string): Promise<void> {
    this.#compactRoom(room)
  }

  async has (room: string): Promise<boolean> {
    return this.#exists.get(room, room) !== undefined
  }

  async check (): Promise<void> {
    this.#db.prepare('SELECT 1').get()
  }

  async close (): Promise<void> {
    if (this.#db.open) this.#db.close()
  }
}
