/**
 * Issue 24, finding 7: each 17-byte subdocument reference cost the server a Y.Doc of 5-7 KB as soon as it
 * decoded the update; 100,000 of them (1.6 MB) took 520-740 MB and a 4 s stall. The server now counts
 * references on the bytes, before decoding, and a room holds at most MAX_SUBDOCUMENTS of them.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as Y from 'yjs'
import * as protocol from '../../server/protocol.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { MAX_SUBDOCUMENTS } from '../../server/subdocuments.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { PeakMemory } from '../helpers/memory.js'
import { closedWithin, openRaw } from '../helpers/raw-socket.js'
import { postUpdate, startServer, type TestServer } from '../helpers/server.js'
import { subdocumentReferences } from '../helpers/updates.js'
import { waitFor } from '../helpers/wait.js'

describe('subdocuments', () => {
  let server: TestServer
  const clients: Client[] = []

  before(async () => {
    server = await startServer({ storage: new MemoryStorage() })
  })
  after(async () => {
    for (const client of clients) client.destroy()
    await server.close()
  })

  it('a socket sending 100,000 subdocument references (1.6 MB) is closed with 4422 at little cost, and the room keeps working', async () => {
    const update = subdocumentReferences(100_000)
    assert.ok(update.length < 1.8 * 1024 * 1024, `${update.length} bytes`)
    const memory = new PeakMemory()
    const raw = await openRaw(server.url, 'subdocs-flood')
    const started = performance.now()
    raw.send(protocol.encodeSyncUpdate(update))
    const closed = await closedWithin(raw)
    assert.equal(closed.code, 4422)
    assert.match(closed.reason, /subdocuments/)
    // Before, decoding alone took 520-740 MB and seconds.
    assert.ok(memory.growthMb < 100, `memory rose ${memory.growthMb.toFixed(0)} MiB`)
    assert.ok(performance.now() - started < 2000, `${(performance.now() - started).toFixed(0)} ms`)
    const a = connectClient(server.url, 'subdocs-flood')
    const b = connectClient(server.url, 'subdocs-flood')
    clients.push(a, b)
    await Promise.all([synced(a), synced(b)])
    a.text.insert(0, 'still here')
    await converged([a, b], { expected: 'still here' })
    assert.equal(a.doc.getArray('a').length, 0)
  })

  it(`a stock client may add ${MAX_SUBDOCUMENTS} subdocuments to a room, one by one; the next one is refused with 4422`, async () => {
    const memory = new PeakMemory()
    const writer = connectClient(server.url, 'subdocs-some')
    const reader = connectClient(server.url, 'subdocs-some')
    clients.push(writer, reader)
    await Promise.all([synced(writer), synced(reader)])
    const list = writer.doc.getArray<Y.Doc>('docs')
    for (let i = 0; i < MAX_SUBDOCUMENTS; i++) list.push([new Y.Doc({ guid: `sub-${i}` })])
    await waitFor(() => reader.doc.getArray('docs').length === MAX_SUBDOCUMENTS, { message: 'every allowed subdocument at the reader' })
    let closeCode = 0
    writer.provider.on('connection-close', (event: { code: number } | null) => { closeCode = event?.code ?? closeCode })
    list.push([new Y.Doc({ guid: 'one-too-many' })])
    await waitFor(() => closeCode === 4422, { message: 'the writer closed with 4422' })
    // The document API counts the same way, across updates.
    const refused = await postUpdate(server.http, 'subdocs-some', subdocumentReferences(1, 12))
    assert.equal(refused.status, 422)
    assert.equal(reader.doc.getArray('docs').length, MAX_SUBDOCUMENTS)
    reader.text.insert(0, 'the reader still edits')
    const third = connectClient(server.url, 'subdocs-some')
    clients.push(third)
    await converged([reader, third], { expected: 'the reader still edits' })
    assert.equal(third.doc.getArray('docs').length, MAX_SUBDOCUMENTS)
    assert.ok(memory.growthMb < 100, `memory rose ${memory.growthMb.toFixed(0)} MiB`)
  })

  it('the document API refuses an update with more references than a room may hold, before decoding it', async () => {
    const refused = await postUpdate(server.http, 'subdocs-api', subdocumentReferences(MAX_SUBDOCUMENTS + 1))
    assert.equal(refused.status, 422)
    assert.equal((await postUpdate(server.http, 'subdocs-api', subdocumentReferences(MAX_SUBDOCUMENTS))).status, 200)
    assert.equal((await postUpdate(server.http, 'subdocs-api', subdocumentReferences(1, 11, MAX_SUBDOCUMENTS))).status, 422)
  })
})
