import pg from 'pg'
import type { Logger } from 'pino'
import { checkNumber } from '../option-check.js'
import { SnapshotMerger } from './merger.js'
import { byRoom, CLAIM_WINDOW, mergeClaims, type AppendEntry, type Storage, type StoredRoom } from './storage.js'

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
 * Postgres storage for many instances: an append-only `updates` table, one `snapshots` row per room, and
 * one `heads` row per room holding its latest commit sequence number and the claims of its latest
 * CLAIM_WINDOW commits (see `append`).
 *
 * Sequence values are handed out before commit, so ids are not in commit order: a reader can see id 7
 * committed while id 6 is still in flight. Compaction therefore deletes exactly the rows it read, by id,
 * never "everything up to id N", and it holds a per-room advisory lock so that two instances compacting
 * the same room one after the other each merge the other's snapshot instead of overwriting it.
 */
export class PostgresStorage implements Storage {
  readonly #pool: pg.Pool
  readonly #t: { updates: string, snapshots: string, heads: string }
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
    this.#t = { updates: `${q}.updates`, snapshots: `${q}.snapshots`, heads: `${q}.heads` }
    const maxConnections = options.maxConnections ?? 10
    checkNumber('maxConnections', maxConnections, { min: 1 })
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
    const { updates, snapshots, heads } = this.#t
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
      // The commit each row belongs to, and the last commit a snapshot merged. Rows stored before commits
      // were numbered have none: they are older than every numbered commit.
      await client.query(`ALTER TABLE ${updates} ADD COLUMN IF NOT EXISTS seq BIGINT`)
      await client.query(`ALTER TABLE ${snapshots} ADD COLUMN IF NOT EXISTS seq BIGINT NOT NULL DEFAULT 0`)
      // claim_* are parallel arrays, one element per client of each of the latest commits: its commit, the
      // client, and the clocks its structs took. `after` is only read by the upsert in append.
      await client.query(`CREATE TABLE IF NOT EXISTS ${heads} (
        room TEXT PRIMARY KEY,
        seq BIGINT NOT NULL,
        after BIGINT,
        claim_seq BIGINT[] NOT NULL,
        claim_client BIGINT[] NOT NULL,
        claim_from BIGINT[] NOT NULL,
        claim_to BIGINT[] NOT NULL)`)
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

  async load (room: string, after = 0): Promise<StoredRoom> {
    // One statement sees one snapshot of the database: a compaction that commits meanwhile cannot make
    // us read the old snapshot and miss the rows it deleted, and the head read is the last commit of the
    // rows read (commits of a room are serialized by its head row).
    const result = await this.#pool.query<{ kind: number, data: Buffer | null, seq: string | null }>(
      `WITH whole AS (SELECT $2::bigint = 0 OR EXISTS (SELECT 1 FROM ${this.#t.snapshots} WHERE room = $1 AND seq > $2) AS yes)
       SELECT 0 AS kind, data, 0::bigint AS id, seq FROM ${this.#t.snapshots} WHERE room = $1 AND (SELECT yes FROM whole)
       UNION ALL
       SELECT 1 AS kind, data, id, seq FROM ${this.#t.updates} WHERE room = $1 AND ((SELECT yes FROM whole) OR seq > $2)
       UNION ALL
       SELECT 2 AS kind, NULL, 0, seq FROM ${this.#t.heads} WHERE room = $1
       ORDER BY kind, id`, [room, after])
    let seq = 0
    let logRows = 0
    const updates: Uint8Array[] = []
    for (const row of result.rows) {
      if (row.kind === 2) seq = Number(row.seq)
      else updates.push(new Uint8Array(row.data!.buffer, row.data!.byteOffset, row.data!.byteLength))
      if (row.kind === 1) logRows++
    }
    return { updates, logRows, seq }
  }

  /**
   * One statement, so one round trip and one transaction for the whole group commit. Per room, an upsert
   * of its head row takes the next sequence number; its WHERE refuses the room when a commit after
   * `after` claimed ids this one claims, or when `after` is older than the claims kept. Postgres evaluates
   * that WHERE on the newest version of the row, after waiting for a concurrent commit of the room to
   * finish, so two instances can never both store structs under one id. The rows are inserted only for
   * the rooms the upsert returned. Head rows are taken in room order, so two group commits never deadlock.
   */
  async append (entries: readonly AppendEntry[]): Promise<ReadonlyMap<string, number | null>> {
    const result = new Map<string, number | null>()
    if (entries.length === 0) return result
    const rooms = [...byRoom(entries)]
    const claimRoom: number[] = []
    const claimClient: number[] = []
    const claimFrom: number[] = []
    const claimTo: number[] = []
    const rowRoom: number[] = []
    const rowData: Buffer[] = []
    rooms.forEach(([name, list], i) => {
      result.set(name, null)
      for (const claim of mergeClaims(list)) {
        claimRoom.push(i + 1)
        claimClient.push(claim.client)
        claimFrom.push(claim.from)
        claimTo.push(claim.to)
      }
      for (const { update } of list) {
        rowRoom.push(i + 1)
        rowData.push(Buffer.from(update.buffer, update.byteOffset, update.byteLength))
      }
    })
    const { updates, heads } = this.#t
    // Named, so that each connection plans it once: planning the statement cost as much as running it.
    const stored = await this.#pool.query<{ room: string, seq: string }>({
      name: `yjs-relay-append-${this.#schema}`,
      text: `WITH batch AS (
         SELECT room, after, i FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS r(room, after, i)
       ), claim AS (
         SELECT * FROM unnest($3::int[], $4::bigint[], $5::bigint[], $6::bigint[]) AS c(i, client, f, t)
       ), mine AS (
         SELECT b.room, b.after, b.i,
           coalesce((SELECT array_agg(c.client ORDER BY c.client) FROM claim c WHERE c.i = b.i), '{}') AS clients,
           coalesce((SELECT array_agg(c.f ORDER BY c.client) FROM claim c WHERE c.i = b.i), '{}') AS froms,
           coalesce((SELECT array_agg(c.t ORDER BY c.client) FROM claim c WHERE c.i = b.i), '{}') AS tos
         FROM batch b
       ), head AS (
         INSERT INTO ${heads} AS h (room, seq, after, claim_seq, claim_client, claim_from, claim_to)
         SELECT room, coalesce(after, 0) + 1, after, array_fill(coalesce(after, 0) + 1, ARRAY[cardinality(clients)]), clients, froms, tos
         FROM mine ORDER BY room
         ON CONFLICT (room) DO UPDATE SET seq = h.seq + 1, after = excluded.after,
           (claim_seq, claim_client, claim_from, claim_to) = (
             SELECT coalesce(array_agg(s), '{}'), coalesce(array_agg(c), '{}'), coalesce(array_agg(f), '{}'), coalesce(array_agg(t), '{}')
             FROM (SELECT * FROM unnest(h.claim_seq, h.claim_client, h.claim_from, h.claim_to) AS o(s, c, f, t)
                   WHERE o.s > h.seq + 1 - ${CLAIM_WINDOW} AND NOT EXISTS (
                     SELECT 1 FROM unnest(excluded.claim_client, excluded.claim_from) AS n(c, f) WHERE n.c = o.c AND n.f = o.t)
                   UNION ALL
                   SELECT h.seq + 1, n.c, coalesce((SELECT min(o.f) FROM unnest(h.claim_seq, h.claim_client, h.claim_from, h.claim_to) AS o(s, c, f, t)
                     WHERE o.s > h.seq + 1 - ${CLAIM_WINDOW} AND o.c = n.c AND o.t = n.f), n.f), n.t
                   FROM unnest(excluded.claim_client, excluded.claim_from, excluded.claim_to) AS n(c, f, t)) AS kept)
         WHERE excluded.after IS NULL OR (excluded.after >= h.seq - ${CLAIM_WINDOW} AND NOT EXISTS (
           SELECT 1 FROM unnest(h.claim_seq, h.claim_client, h.claim_from, h.claim_to) AS o(s, c, f, t),
             unnest(excluded.claim_client, excluded.claim_from, excluded.claim_to) AS n(c, f, t)
           WHERE o.s > excluded.after AND o.c = n.c AND o.f < n.t AND n.f < o.t))
         RETURNING h.room, h.seq
       ), stored AS (
         INSERT INTO ${updates} (room, seq, data)
         SELECT h.room, h.seq, u.data FROM head h JOIN mine m ON m.room = h.room
           JOIN unnest($7::int[], $8::bytea[]) WITH ORDINALITY AS u(i, data, o) ON u.i = m.i ORDER BY u.o
       )
       SELECT room, seq FROM head`,
      values: [rooms.map(([name]) => name), rooms.map(([, list]) => list[0]!.after ?? null), claimRoom, claimClient, claimFrom, claimTo, rowRoom, rowData],
    })
    for (const row of stored.rows) result.set(row.room, Number(row.seq))
    return result
  }

  async heads (rooms: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const result = new Map<string, number>(rooms.map((room) => [room, 0]))
    if (rooms.length === 0) return result
    const found = await this.#pool.query<{ room: string, seq: string }>(
      `SELECT room, seq FROM ${this.#t.heads} WHERE room = ANY($1::text[])`, [rooms])
    for (const row of found.rows) result.set(row.room, Number(row.seq))
    return result
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
      const log = await client.query<{ id: string, data: Buffer, seq: string | null }>(
        `SELECT id, data, seq FROM ${updates} WHERE room = $1 ORDER BY id`, [room])
      if (log.rows.length === 0) return
      const snapshot = await client.query<{ data: Buffer }>(`SELECT data FROM ${snapshots} WHERE room = $1`, [room])
      // On a worker thread: a big document takes tens of milliseconds to merge.
      const merged = await this.#merger.merge([...snapshot.rows, ...log.rows].map((row) => row.data))
      // The rows read are every commit up to the newest of them (a commit is visible only after the ones
      // before it): catch-up reads from an older commit need the snapshot.
      const seq = log.rows.reduce((max, row) => Math.max(max, Number(row.seq ?? 0)), 0)
      await client.query(`INSERT INTO ${snapshots} (room, data, compacted_at, seq) VALUES ($1, $2, now(), $3)
        ON CONFLICT (room) DO UPDATE SET data = excluded.data, compacted_at = excluded.compacted_at,
          seq = GREATEST(${snapshots}.seq, excluded.seq)`, [room, Buffer.from(merged), seq])
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
