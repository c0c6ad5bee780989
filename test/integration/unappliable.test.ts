/**
 * Issue 24, finding 1, what admission cannot undo: rooms whose log already holds updates that Yjs cannot
 * apply (stored before the nesting limit, or anything else that throws). Such a room loads with everything
 * else, counts what it skipped in /metrics, compacts, answers and broadcasts its commits, and a SIGTERM
 * ends the server within its bound.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import * as Y from 'yjs'
import { PostgresStorage } from '../../server/storage/postgres.js'
import { SqliteStorage } from '../../server/storage/sqlite.js'
import type { Storage } from '../../server/storage/storage.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { PeakMemory } from '../helpers/memory.js'
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../helpers/postgres.js'
import { startServer } from '../helpers/server.js'
import { startServerProcess } from '../helpers/server-process.js'
import { nestedMaps } from '../helpers/updates.js'

/** An update Yjs decodes and then throws on: a delete range of length 0. */
const THROWS = new Uint8Array([0, 1, 5, 1, 0, 0])

/** The rows of a room bricked before the fix: honest text around 3,000 nested maps, their root's delete, and an update that throws. */
const brickedLog = (): { rows: Uint8Array[], text: string } => {
  const honest = new Y.Doc()
  honest.clientID = 1
  const rows: Uint8Array[] = []
  honest.on('update', (update: Uint8Array) => rows.push(update))
  honest.getText('text').insert(0, 'written before; ')
  const { whole, deleteRoot } = nestedMaps(3000)
  rows.push(whole, deleteRoot, THROWS)
  honest.getText('text').insert(16, 'and after.')
  return { rows, text: honest.getText('text').toString() }
}

const skippedMetric = async (http: string): Promise<number> => {
  const text = await (await fetch(`${http}/metrics`)).text()
  return Number(/^yjs_relay_updates_skipped_total (\d+)/m.exec(text)?.[1] ?? 'NaN')
}

describe('stored updates that cannot be applied', () => {
  const cleanups: Array<() => Promise<void>> = []
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  })

  const storages: Array<[string, () => Promise<Storage>]> = [
    ['SQLite', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'yjs-relay-unappliable-'))
      cleanups.push(() => rm(dir, { recursive: true, force: true }))
      return new SqliteStorage({ file: join(dir, 'rooms.sqlite') })
    }],
    ['Postgres', async () => {
      const schema = uniqueSchema('unappliable')
      cleanups.push(() => dropSchema(schema))
      return PostgresStorage.open({ url: TEST_DATABASE_URL, schema })
    }],
  ]
  for (const [kind, open] of storages) {
    it(`${kind}: a room whose log holds 3,000 nested maps, the delete of their root and an update that throws loads with everything else, counts the skip, keeps syncing and compacts`, async () => {
      const storage = await open()
      const { rows, text } = brickedLog()
      await storage.append(rows.map((update) => ({ room: 'bricked', update })))
      const memory = new PeakMemory()
      const server = await startServer({ storage })
      const clients: Client[] = []
      try {
        const a = connectClient(server.url, 'bricked')
        clients.push(a)
        await synced(a)
        assert.equal(a.text.toString(), text)
        assert.equal(a.doc.getMap('root').get('k'), undefined)
        assert.ok(await skippedMetric(server.http) >= 1)
        const b = connectClient(server.url, 'bricked')
        clients.push(b)
        await synced(b)
        a.text.insert(0, '> ')
        await converged([a, b], { expected: `> ${text}` })
        assert.equal((await fetch(`${server.http}/api/docs/bricked`, { signal: AbortSignal.timeout(10_000) })).status, 200)
        // Compaction merges the log, leaving out what cannot be applied.
        await server.server.rooms.get('bricked')!.flushed()
        await storage.compact('bricked')
        const stored = await storage.load('bricked')
        assert.equal(stored.logRows, 0)
        const reloaded = new Y.Doc()
        for (const update of stored.updates) Y.applyUpdate(reloaded, update)
        assert.equal(reloaded.getText('text').toString(), `> ${text}`)
        assert.ok(memory.growthMb < 200, `memory rose ${memory.growthMb.toFixed(0)} MiB`)
      } finally {
        for (const client of clients) client.destroy()
        await server.close()
        await storage.close()
      }
    })
  }

  it('a server process: the delete of maps nested 3,000 deep (stored before the limit) is refused before it is stored, the room goes on, SIGTERM ends it in time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'yjs-relay-unappliable-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const { whole, deleteRoot } = nestedMaps(3000)
    const honest = new Y.Doc()
    honest.getText('text').insert(0, 'honest text')
    const seed = new SqliteStorage({ file: join(dir, 'rooms.sqlite') })
    await seed.append([{ room: 'deep', update: Y.encodeStateAsUpdate(honest) }, { room: 'deep', update: whole }])
    await seed.close()
    const server = await startServerProcess({ DATA_DIR: dir, SHUTDOWN_SPREAD_MS: '500' })
    cleanups.push(async () => { await server.kill('SIGKILL') })
    const memory = new PeakMemory(server.child.pid)
    // The 10-byte delete of the outermost map: before, the POST never answered and the room was stuck.
    const deleted = await fetch(`${server.http}/api/docs/deep/update`, { method: 'POST', body: deleteRoot, signal: AbortSignal.timeout(10_000) })
    assert.equal(deleted.status, 422)
    assert.match(await deleted.text(), /deletes a type nested deeper/)
    const more = new Y.Doc()
    Y.applyUpdate(more, Y.encodeStateAsUpdate(honest))
    const before = Y.encodeStateVector(more)
    more.getText('text').insert(11, ', still editable')
    assert.equal((await fetch(`${server.http}/api/docs/deep/update`, { method: 'POST', body: Y.encodeStateAsUpdate(more, before), signal: AbortSignal.timeout(10_000) })).status, 200)
    const stored = new Y.Doc()
    Y.applyUpdate(stored, new Uint8Array(await (await fetch(`${server.http}/api/docs/deep/update`, { signal: AbortSignal.timeout(10_000) })).arrayBuffer()))
    assert.equal(stored.getText('text').toString(), 'honest text, still editable')
    assert.ok(stored.getMap('root').get('k') instanceof Y.Map)
    assert.ok(memory.growthMb < 300, `server memory rose ${memory.growthMb.toFixed(0)} MiB`)
    const started = Date.now()
    server.child.kill('SIGTERM')
    const code = await Promise.race([server.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 11_000).unref())])
    assert.equal(code, 0, `exit after ${Date.now() - started} ms`)
  })
})
