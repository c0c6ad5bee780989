/**
 * Issue 24, finding 1: a write client nesting shared types thousands deep, then deleting the outermost
 * entry, overflowed Yjs's recursion inside the room's transaction after the delete was stored, and the
 * room stopped working for good. The server now refuses, before storing, an update that nests types deeper
 * than MAX_NESTING_DEPTH, counting levels made by earlier updates, stored or still waiting for a commit.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as Y from 'yjs'
import { MAX_NESTING_DEPTH } from '../../server/nesting.js'
import * as protocol from '../../server/protocol.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { PeakMemory } from '../helpers/memory.js'
import { closedWithin, openRaw } from '../helpers/raw-socket.js'
import { postUpdate, startServer, type TestServer } from '../helpers/server.js'
import { nestedMaps } from '../helpers/updates.js'
import { waitFor } from '../helpers/wait.js'

/** How deep the maps under root map `root` of the room's stored document go. */
const storedDepth = async (http: string, room: string): Promise<number> => {
  const response = await fetch(`${http}/api/docs/${room}/update`)
  assert.equal(response.status, 200)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(await response.arrayBuffer()))
  let depth = 1
  for (let map: unknown = doc.getMap('root').get('k'); map instanceof Y.Map; map = map.get('k')) depth++
  return depth
}

describe('nesting depth', () => {
  let server: TestServer
  const clients: Client[] = []
  let memory: PeakMemory

  before(async () => {
    server = await startServer({ storage: new MemoryStorage(), messagesPerSecond: 1_000_000, messageBurst: 1_000_000 })
    memory = new PeakMemory()
  })
  after(async () => {
    for (const client of clients) client.destroy()
    await server.close()
    // 3,000 maps are 36 KB on the wire and a few MB in a document.
    assert.ok(memory.growthMb < 200, `memory rose ${memory.growthMb.toFixed(0)} MiB`)
  })

  /** Two stock clients edit `room` and see each other's edits: the room works. */
  const roomWorks = async (room: string, mark: string): Promise<void> => {
    const a = connectClient(server.url, room)
    const b = connectClient(server.url, room)
    clients.push(a, b)
    await Promise.all([synced(a), synced(b)])
    a.text.insert(0, `${mark}-a;`)
    b.text.insert(0, `${mark}-b;`)
    const text = await converged([a, b])
    assert.ok(text.includes(`${mark}-a;`) && text.includes(`${mark}-b;`))
    const response = await fetch(`${server.http}/api/docs/${room}`, { signal: AbortSignal.timeout(10_000) })
    assert.equal(response.status, 200)
  }

  it('a socket that sends maps nested 3,000 deep, then the delete of their root, is closed with 4422 and the room keeps working', async () => {
    const { whole, deleteRoot } = nestedMaps(3000)
    assert.ok(whole.length < 40_000)
    const raw = await openRaw(server.url, 'deep-socket')
    raw.send(protocol.encodeSyncUpdate(whole))
    raw.send(protocol.encodeSyncUpdate(deleteRoot))
    const closed = await closedWithin(raw)
    assert.equal(closed.code, 4422)
    assert.match(closed.reason, /deeper than 256/)
    await roomWorks('deep-socket', 'after')
    assert.equal(await storedDepth(server.http, 'deep-socket'), 1)
  })

  it('one level per message in one burst: the level past the limit and what follows are refused, the rest stored', async () => {
    const { levels, deleteRoot } = nestedMaps(MAX_NESTING_DEPTH + 50, 8)
    const raw = await openRaw(server.url, 'deep-burst')
    for (const level of levels) raw.send(protocol.encodeSyncUpdate(level))
    const closed = await closedWithin(raw)
    assert.equal(closed.code, 4422)
    await waitFor(async () => await storedDepth(server.http, 'deep-burst') === MAX_NESTING_DEPTH, { message: 'the allowed levels stored' })
    // Deleting the deepest structure allowed is an ordinary edit.
    const response = await postUpdate(server.http, 'deep-burst', deleteRoot)
    assert.equal(response.status, 200)
    assert.equal(await storedDepth(server.http, 'deep-burst'), 1)
    await roomWorks('deep-burst', 'after')
  })

  it('the document API refuses a nested update with 422, also one that nests inside types stored before', async () => {
    const { whole, levels } = nestedMaps(3000, 9)
    const refused = await postUpdate(server.http, 'deep-api', whole)
    assert.equal(refused.status, 422)
    assert.equal((await refused.json() as { error: string }).error, 'BAD_UPDATE')
    const allowed = await postUpdate(server.http, 'deep-api', Y.mergeUpdates(levels.slice(0, MAX_NESTING_DEPTH - 1)))
    assert.equal(allowed.status, 200)
    // One more level, inside the deepest map the room holds (the root map is level 1).
    assert.equal((await postUpdate(server.http, 'deep-api', levels[MAX_NESTING_DEPTH - 1]!)).status, 422)
    assert.equal(await storedDepth(server.http, 'deep-api'), MAX_NESTING_DEPTH)
    await roomWorks('deep-api', 'after')
  })
})
