import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { SyncError } from '../../server/errors.js'
import { createLogger } from '../../server/log.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { SyncServer } from '../../server/sync-server.js'
import { connectClient, synced, type Client } from '../helpers/clients.js'
import { dependentUpdates } from '../helpers/updates.js'
import { waitFor } from '../helpers/wait.js'

/** One update that creates a text, a map, an array and an XML fragment. */
const richUpdate = (): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('text').insert(0, 'hello')
  doc.getMap('meta').set('title', 'Notes')
  doc.getMap('meta').set('count', 2)
  doc.getArray('list').push([1, 'two', { three: 3 }])
  const paragraph = new Y.XmlElement('p')
  paragraph.insert(0, [new Y.XmlText('hi')])
  doc.getXmlFragment('xml').insert(0, [paragraph])
  const update = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return update
}

const json = async (response: Response): Promise<any> => response.json()

describe('document API', () => {
  const storage = new MemoryStorage()
  let server: SyncServer
  let base = ''
  const clients: Client[] = []

  before(async () => {
    server = new SyncServer({
      storage,
      logger: createLogger('silent'),
      maxMessageBytes: 4096,
      authorize: (request) => {
        const auth = request.headers.authorization
        if (auth === 'Bearer reader') return { mode: 'read' }
        if (auth === 'Bearer writer') return { mode: 'write' }
        throw new SyncError('UNAUTHENTICATED', 'send a bearer token')
      },
    })
    const { port } = await server.listen(0)
    base = `http://127.0.0.1:${port}/api/docs`
  })

  after(async () => {
    for (const client of clients) client.destroy()
    await server.close()
  })

  const writer = { authorization: 'Bearer writer' }
  const reader = { authorization: 'Bearer reader' }

  it('answers 404 for a room that was never stored, without creating it', async () => {
    for (const path of ['/nowhere', '/nowhere/update']) {
      const response = await fetch(`${base}${path}`, { headers: reader })
      assert.equal(response.status, 404)
      assert.equal((await json(response)).error, 'NOT_FOUND')
    }
    assert.equal(server.loadedRoom('nowhere'), undefined)
    assert.equal(await storage.has('nowhere'), false)
  })

  it('applies a posted update: stored before the response, and sent to connected clients', async () => {
    // Stock clients cannot send an Authorization header: watch through an open server on the same storage.
    const open = new SyncServer({ storage, logger: createLogger('silent') })
    const { port } = await open.listen(0)
    try {
      const watcher = connectClient(`ws://127.0.0.1:${port}`, 'posted')
      clients.push(watcher)
      await synced(watcher)
      const response = await fetch(`http://127.0.0.1:${port}/api/docs/posted/update`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: richUpdate(),
      })
      assert.equal(response.status, 200, await response.clone().text())
      assert.equal((await json(response)).room, 'posted')
      assert.equal(await storage.has('posted'), true)
      const stored = new Y.Doc()
      for (const update of (await storage.load('posted')).updates) Y.applyUpdate(stored, update)
      assert.equal(stored.getText('text').toString(), 'hello')
      await waitFor(() => watcher.text.toString() === 'hello', { timeoutMs: 10_000, message: 'the posted text at the client' })
    } finally {
      await open.close()
    }
  })

  it('returns the JSON of every shared type, inferring each kind', async () => {
    const response = await fetch(`${base}/posted`, { headers: reader })
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /application\/json/)
    assert.deepEqual(await json(response), {
      text: 'hello',
      meta: { title: 'Notes', count: 2 },
      list: [1, 'two', { three: 3 }],
      xml: '<p>hi</p>',
    })
  })

  it('returns the document as one binary Yjs update', async () => {
    const response = await fetch(`${base}/posted/update`, { headers: reader })
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('content-type'), 'application/octet-stream')
    const doc = new Y.Doc()
    Y.applyUpdate(doc, new Uint8Array(await response.arrayBuffer()))
    assert.equal(doc.getText('text').toString(), 'hello')
    assert.deepEqual(doc.getArray('list').toJSON(), [1, 'two', { three: 3 }])
  })

  it('applies the same auth as sockets: 401 without a token, 403 for a read-only POST', async () => {
    const anonymous = await fetch(`${base}/posted`)
    assert.equal(anonymous.status, 401)
    assert.equal((await json(anonymous)).message, 'send a bearer token')
    const readOnly = await fetch(`${base}/posted/update`, { method: 'POST', headers: reader, body: richUpdate() })
    assert.equal(readOnly.status, 403)
    assert.equal((await json(readOnly)).error, 'FORBIDDEN')
  })

  it('refuses a bad update with 422, an empty body with 422, a large body with 413', async () => {
    const bad = await fetch(`${base}/posted/update`, { method: 'POST', headers: writer, body: new Uint8Array([9, 9, 9, 9, 9, 9]) })
    assert.equal(bad.status, 422)
    const body = await json(bad)
    assert.equal(body.error, 'BAD_UPDATE')
    assert.match(body.message, /cannot be decoded/)
    const empty = await fetch(`${base}/posted/update`, { method: 'POST', headers: writer })
    assert.equal(empty.status, 422)
    const big = await fetch(`${base}/posted/update`, { method: 'POST', headers: writer, body: new Uint8Array(5000) })
    assert.equal(big.status, 413)
    assert.equal((await json(big)).error, 'MESSAGE_TOO_BIG')
    // Nothing of it reached the document.
    const after = await json(await fetch(`${base}/posted`, { headers: reader }))
    assert.equal(after.text, 'hello')
  })

  it('refuses an update that depends on content the room does not have with 422, and applies nothing', async () => {
    const { second: dependent } = dependentUpdates('elsewhere ', 'dependent')
    const response = await fetch(`${base}/posted/update`, { method: 'POST', headers: writer, body: dependent })
    assert.equal(response.status, 422)
    const body = await json(response)
    assert.equal(body.error, 'BAD_UPDATE')
    assert.match(body.message, /depends on content the room does not have/)
    assert.equal((await json(await fetch(`${base}/posted`, { headers: reader }))).text, 'hello')
  })

  it('refuses with 409 an update that holds other content under ids the room holds, and applies nothing', async () => {
    const made = (text: string): Uint8Array => {
      const doc = new Y.Doc()
      doc.clientID = 777
      doc.getText('text').insert(0, text)
      return Y.encodeStateAsUpdate(doc)
    }
    assert.equal((await fetch(`${base}/same-ids/update`, { method: 'POST', headers: writer, body: made('first') })).status, 200)
    const response = await fetch(`${base}/same-ids/update`, { method: 'POST', headers: writer, body: made('other') })
    assert.equal(response.status, 409)
    assert.equal((await json(response)).error, 'CONFLICTING_UPDATE')
    // The same content again is a resend, not a conflict.
    assert.equal((await fetch(`${base}/same-ids/update`, { method: 'POST', headers: writer, body: made('first') })).status, 200)
    assert.equal((await json(await fetch(`${base}/same-ids`, { headers: reader }))).text, 'first')
  })

  it('refuses other methods with 405 and an Allow header', async () => {
    const response = await fetch(`${base}/posted`, { method: 'DELETE', headers: writer })
    assert.equal(response.status, 405)
    assert.equal(response.headers.get('allow'), 'GET')
  })

  it('reads a room with kinds the live document already knows', async () => {
    const open = new SyncServer({ storage, logger: createLogger('silent') })
    const { port } = await open.listen(0)
    try {
      await open.transact('typed', (doc) => { doc.getText('empty'); doc.getArray('items').push(['a']) })
      const body = await json(await fetch(`http://127.0.0.1:${port}/api/docs/typed`))
      assert.deepEqual(body, { empty: '', items: ['a'] })
    } finally {
      await open.close()
    }
  })
})
