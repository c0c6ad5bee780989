import pg from 'pg'
import type { Logger } from 'pino'
import { SnapshotMerger } from './merger.js'
import type { AppendEntry, Storage, StoredRoom } from './storage.js'

export interface PostgresStorageOptions {
  /** `postgres://` connection string. */
  readonly url: string
  /** Schema holding the tables; created on open. Default `public`. Letters, digits and `_` only. */
  readonly schema?: string
  /** Most connections this storage opens. Default 10. */
  readonly maxConnections?: number
  /** Fail a query that waits this long for a connection. Default 5000 ms. */
  readonly connectTimeoutMs?: number
  /** Where connection errors are reported; they never end the process. */
  readonly log?: Logger
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * Postgres storage for many instances: an append-only `updates` table and one `snapshots` row per room.
 *
 * Sequence values are handed out before commit, so ids are not in commit order: a reader can see id 7
 * committed while id 6 is still in flight. Compaction therefore deletes exactly the rows it read, by id,
 * never "everything up to id N", and it holds a per-room advisory lock so that two instances compacting
 * the same room one after the other each merge the other's snapshot instead of overwriting it.
 */
export class PostgresStorage implements Storage {
  readonly #pool: pg.Pool
  readonly #t: { updates: string, snapshots: string }
  readonly #schema: string
  readonly #merger = new SnapshotMerger()
  /**
   * Compactions that may hold a connection at once. Each holds one while it waits for its room's lock and
   * for the merge worker: unbounded, a wave of rooms unloading together took the whole pool, and group
   * commits waiting for a connection failed (4503 to their writers).
   */
  readonly #compactionSlots: number
  #compacting = 0
  readonly #compactionQueue: Array<() => void> = []
  #closed = false

  private constructor (options: PostgresStorageOptions, schema: string) {
    this.#schema = schema
    const q = `"${schema}"`
    this.#t = { updates: `${q}.updates`, snapshots: `${q}.snapshots` }
    const maxConnections = options.maxConnections ?? 10
    if (!Number.isInteger(maxConnections) || maxConnections < 1) throw new RangeError(`maxConnections must be an integer >= 1, got ${maxConnections}`)
    this.#compactionSlots = Math.max(1, Math.floor(maxConnections / 4))
    this.#pool = new pg.Pool({
      connectionString: options.url,
      max: maxConnections,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 30_000,
      // A connection that dies silently (network partition) must not hang a commit forever.
      keepAlive: true,
      query_timeout: 30_000,
    })
    const log = options.log
    // pg emits 'error' on idle clients when the server goes away; unhandled, that would end the process.
    this.#pool.on('error', (error) => {
      log?.warn({ err: error }, 'postgres: an idle connection failed; it is replaced on next use')
    })
  }

  /** Connects, creates the schema and tables if missing, and returns the storage. */
  static async open (options: PostgresStorageOptions): Promise<PostgresStorage> {
    const schema = options.schema ?? 'public'
    if (!IDENTIFIER.test(schema)) throw new RangeError(`schema must be letters, digits and "_" (at most 63), got "${schema}"`)
    const storage = new PostgresStorage(options, schema)
    try {
      await storage.#createTables()
    } catch (error) {
      await storage.close()
      throw error
    }
    return storage
  }

  async #createTables (): Promise<void> {
    const { updates, snapshots } = this.#t
    await this.#transaction(async (client) => {
      // Instances starting together would race on CREATE ... IF NOT EXISTS (it is not atomic in Postgres).
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`yjs-relay schema ${this.#schema}`])
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.#schema}"`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${updates} (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        room TEXT NOT NULL,
        data BYTEA NOT NULL)`)
      await client.query(`CREATE INDEX IF NOT EXISTS updates_by_room ON ${updates} (room, id)`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${snapshots} (
        room TEXT PRIMARY KEY,
        data BYTEA NOT NULL,
        compacted_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
    })
  }

  async #transaction<T> (work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect()
    let broken = false
    try {
      await client.query('BEGIN')
      const result = await work(client)
      await client.query('COMMIT')
      return result
    } catch (error) {
      await client.query('ROLLBACK').catch(() => { broken = true })
      throw error
    } finally {
      client.release(broken)
    }
  }

  async load (room: string): Promise<StoredRoom> {
    // One statement sees one snapshot of the database: a compaction that commits meanwhile cannot make
    // us read the old snapshot and miss the rows it deleted.
    const result = await this.#pool.query<{ kind: number, data: Buffer }>(
      `SELECT 0 AS kind, data, 0::bigint AS id FROM ${this.#t.snapshots} WHERE room = $1
       UNION ALL
       SELECT 1 AS kind, data, id FROM ${this.#t.updates} WHERE room = $1
       ORDER BY kind, id`, [room])
    const updates = result.rows.map((row) => new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength))
    const logRows = result.rows.filter((row) => row.kind === 1).length
    return { updates, logRows }
  }

  async append (entries: readonly AppendEntry[]): Promise<void> {
    if (entries.length === 0) return
    // One statement is one transaction: all or nothing, one round trip for the whole group commit.
    await this.#pool.query(
      `INSERT INTO ${this.#t.updates} (room, data) SELECT * FROM unnest($1::text[], $2::bytea[])`,
      [entries.map((e) => e.room), entries.map((e) => Buffer.from(e.update.buffer, e.update.byteOffset, e.update.byteLength))])
  }

  async compact (room: string): Promise<void> {
    // A finished compaction hands its slot to the next one waiting.
    if (this.#compacting < this.#compactionSlots) this.#compacting++
    else await new Promise<void>((resolve) => this.#compactionQueue.push(resolve))
    try {
      await this.#compact(room)
    } finally {
      const next = this.#compactionQueue.shift()
      if (next !== undefined) next()
      else this.#compacting--
    }
  }

  async #compact (room: string): Promise<void> {
    const { updates, snapshots } = this.#t
    await this.#transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [`yjs-relay ${this.#schema}`, room])
      // Read after taking the lock, so a compaction that committed while we waited is seen.
      const log = await client.query<{ id: string, data: Buffer }>(
        `SELECT id, data FROM ${updates} WHERE room = $1 ORDER BY id`, [room])
      if (log.rows.length === 0) return
      const snapshot = await client.query<{ data: Buffer }>(`SELECT data FROM ${snapshots} WHERE room = $1`, [room])
      // On a worker thread: a big document takes tens of milliseconds to merge.
      const merged = await this.#merger.merge([...snapshot.rows, ...log.rows].map((row) => row.data))
      await client.query(`INSERT INTO ${snapshots} (room, data, compacted_at) VALUES ($1, $2, now())
        ON CONFLICT (room) DO UPDATE SET data = excluded.data, compacted_at = excluded.compacted_at`, [room, Buffer.from(merged)])
      await client.query(`DELETE FROM ${updates} WHERE id = ANY($1::bigint[])`, [log.rows.map((row) => row.id)])
    })
  }

  async has (room: string): Promise<boolean> {
    const result = await this.#pool.query(
      `SELECT EXISTS (SELECT 1 FROM ${this.#t.snapshots} WHERE room = $1)
        OR EXISTS (SELECT 1 FROM ${this.#t.updates} WHERE room = $1) AS found`, [room])
    return result.rows[0]?.found === true
  }

  async check (): Promise<void> {
    await this.#pool.query('SELECT 1')
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#merger.close()
    await this.#pool.end()
  }
}
