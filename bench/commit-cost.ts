/**
 * What checking a commit against the room's whole log costs: `node dist/bench/commit-cost.js [commits]`
 * against `DATABASE_URL` (default: the test database). It times, interleaved so that both see the same
 * load, the statement a commit was before commits were numbered (one INSERT of the rows) and the commit of
 * today (`PostgresStorage.append`: the rows, the room's sequence number and the claimed ids, checked), one
 * update per commit; then three writers committing to one room at once, each its own client, as three
 * instances do. Prints the median, 90th and 99th percentile in milliseconds.
 */
import pg from 'pg'
import * as Y from 'yjs'
import { PostgresStorage } from '../server/storage/postgres.js'

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const commits = Number(process.argv[2] ?? 2000)
const schema = `commit_cost_${process.pid}`

const percentiles = (times: number[]): string => {
  const sorted = [...times].sort((a, b) => a - b)
  const at = (p: number): string => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!.toFixed(2)
  return `p50 ${at(0.5)}  p90 ${at(0.9)}  p99 ${at(0.99)}`
}

/** One-character insertions by `client`, one update each, as a typist sends them. */
const typing = (client: number, count: number): Uint8Array[] => {
  const doc = new Y.Doc()
  doc.clientID = client
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => updates.push(update))
  for (let i = 0; i < count; i++) doc.getText('t').insert(i, 'x')
  return updates
}

const storage = await PostgresStorage.open({ url, schema })
const pool = new pg.Pool({ connectionString: url, max: 4 })
try {
  await pool.query(`CREATE TABLE "${schema}".before (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, room TEXT NOT NULL, data BYTEA NOT NULL)`)
  await pool.query(`CREATE INDEX ON "${schema}".before (room, id)`)
  const updates = typing(7, commits + 200)
  const times = { before: [] as number[], checked: [] as number[] }
  let seq = 0
  const run = {
    before: (i: number) => pool.query(`INSERT INTO "${schema}".before (room, data) SELECT * FROM unnest($1::text[], $2::bytea[])`, [['room'], [Buffer.from(updates[i]!)]]),
    checked: async (i: number) => {
      const stored = await storage.append([{ room: 'room', update: updates[i]!, after: seq, claims: [{ client: 7, from: i, to: i + 1 }] }])
      seq = stored.get('room') ?? seq
    },
  }
  for (let i = 0; i < commits + 200; i++) {
    for (const kind of i % 2 === 0 ? ['before', 'checked'] as const : ['checked', 'before'] as const) {
      const started = performance.now()
      await run[kind](i)
      // The first 200 warm the connections and the statement plans.
      if (i >= 200) times[kind].push(performance.now() - started)
    }
  }
  console.log(`one writer, ${commits} commits of one update`)
  console.log(`  before (INSERT only):        ${percentiles(times.before)}`)
  console.log(`  checked (numbered, claimed): ${percentiles(times.checked)}`)

  const writers = [11, 12, 13].map((client) => ({ client, updates: typing(client, commits / 2), seq: 0, times: [] as number[] }))
  await Promise.all(writers.map(async (writer) => {
    for (let i = 0; i < writer.updates.length; i++) {
      const started = performance.now()
      const stored = await storage.append([{ room: 'shared', update: writer.updates[i]!, after: writer.seq, claims: [{ client: writer.client, from: i, to: i + 1 }] }])
      writer.times.push(performance.now() - started)
      const got = stored.get('shared')
      if (got === null || got === undefined) throw new Error('an honest commit was refused')
      writer.seq = got
    }
  }))
  console.log(`three writers on one room at once, ${commits / 2} commits each, none refused`)
  console.log(`  checked:                     ${percentiles(writers.flatMap((w) => w.times))}`)
} finally {
  await pool.query(`DROP SCHEMA "${schema}" CASCADE`)
  await pool.end()
  await storage.close()
}
