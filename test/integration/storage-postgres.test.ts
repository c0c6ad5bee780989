import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import * as Y from 'yjs'
import { PostgresStorage } from '../../server/storage/postgres.js'
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../helpers/postgres.js'
import { edit, storageContract, textOf } from '../unit/storage-contract.js'
import { sequenceContract } from '../unit/storage-sequence-contract.js'

const schema = uniqueSchema('storage')
after(() => dropSchema(schema))

const open = (): Promise<PostgresStorage> => PostgresStorage.open({ url: TEST_DATABASE_URL, schema })

storageContract('postgres', open)
sequenceContract('postgres', open)

/** mulberry32: a small seeded generator, so a failing interleaving can be replayed from its seed. */
const random = (seed: number): () => number => () => {
  seed = (seed + 0x6D2B79F5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe('postgres storage with several instances on one database', () => {
  it('rejects a schema name that is not a plain identifier', async () => {
    await assert.rejects(PostgresStorage.open({ url: TEST_DATABASE_URL, schema: 'x"; DROP TABLE y' }), RangeError)
  })

  it('loses nothing when two instances compact one room concurrently (seeded random interleavings)', async () => {
    const a = await open()
    const b = await open()
    try {
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const next = random(seed)
        const room = `concurrent-compaction-${seed}`
        const writers = [new Y.Doc(), new Y.Doc(), new Y.Doc()]
        const expected = new Set<string>()
        const work: Array<Promise<void>> = []
        for (let step = 0; step < 60; step++) {
          const storage = next() < 0.5 ? a : b
          const roll = next()
          if (roll < 0.25) {
            work.push(storage.compact(room))
          } else {
            const writer = writers[Math.floor(next() * writers.length)]!
            const token = `<${seed}.${step}>`
            expected.add(token)
            work.push(storage.append([{ room, update: edit(writer, (t) => t.insert(0, token)) }]).then(() => {}))
          }
          // Let a random number of operations run at once before the next one starts.
          if (next() < 0.3) await Promise.all(work.splice(0))
        }
        await Promise.all(work.splice(0))
        await Promise.all([a.compact(room), b.compact(room)])
        const text = textOf((await a.load(room)).updates)
        for (const token of expected) {
          assert.equal(text.split(token).length - 1, 1, `seed ${seed}: ${token} present exactly once`)
        }
        const loaded = await b.load(room)
        assert.equal(loaded.logRows, 0, `seed ${seed}: everything compacted`)
        assert.equal(textOf(loaded.updates), text)
      }
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('keeps commits going while compactions wait for a room another instance is compacting', async () => {
    const storage = await PostgresStorage.open({ url: TEST_DATABASE_URL, schema, maxConnections: 4, connectTimeoutMs: 1000 })
    const other = new pg.Client({ connectionString: TEST_DATABASE_URL })
    await other.connect()
    const writer = new Y.Doc()
    try {
      await storage.append([{ room: 'held', update: edit(writer, (t) => t.insert(0, 'held')) }])
      // Another instance's compaction of the room: it holds the room's lock until it commits.
      await other.query('BEGIN')
      await other.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [`yjs-relay ${schema}`, 'held'])
      const compactions = Array.from({ length: 6 }, () => storage.compact('held'))
      // Each waiting compaction would hold a connection; group commits must still get one.
      for (let i = 0; i < 5; i++) await storage.append([{ room: 'busy', update: edit(writer, (t) => t.insert(0, 'x')) }])
      await other.query('COMMIT')
      await Promise.all(compactions)
      assert.equal(textOf((await storage.load('held')).updates), 'held')
      assert.equal((await storage.load('busy')).updates.length, 5)
    } finally {
      await other.end()
      await storage.close()
    }
  })

  it('fails to open, with an error and without crashing, when the database cannot be reached', async () => {
    const unreachable = await PostgresStorage.open({ url: 'postgres://postgres@127.0.0.1:1/test', connectTimeoutMs: 500 }).catch((error: Error) => error)
    assert.ok(unreachable instanceof Error)
  })
})
