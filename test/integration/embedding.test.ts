import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { createLogger, createSyncServer, MemoryStorage, SyncError } from '../../server/index.js'
import { storageWith } from '../helpers/storage.js'
import { connectClient, synced } from '../helpers/clients.js'
import { waitFor } from '../helpers/wait.js'

describe('embedding API', () => {
  it('attaches to an existing HTTP server, authorizes, and edits documents from server code', async () => {
    const storage = new MemoryStorage()
    const sync = createSyncServer({
      storage,
      logger: createLogger('silent'),
      authorize: (_request, room) => {
        if (room.startsWith('private-')) throw new SyncError('FORBIDDEN', 'not yours')
        return { mode: 'write' }
      },
    })
    const http = createServer((_request, response) => response.end('the app'))
    sync.attach(http)
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`
    const client = connectClient(url, 'notes')
    const refused = connectClient(url, 'private-x')
    const closeCodes: number[] = []
    refused.provider.on('connection-close', (event: { code: number } | null) => { closeCodes.push(event?.code ?? 0) })
    try {
      assert.equal(await (await fetch(url.replace('ws:', 'http:'))).text(), 'the app')
      await synced(client)
      await sync.transact('notes', (doc) => doc.getText('text').insert(0, 'from the server'))
      await waitFor(() => client.text.toString() === 'from the server', { message: 'server edit at the client' })
      assert.equal((await storage.load('notes')).updates.length, 1, 'stored before transact resolved')

      client.text.insert(0, '> ')
      const room = await sync.openRoom('notes')
      await waitFor(() => room.doc.getText('text').toString() === '> from the server', { message: 'client edit on the server' })
      room.release()

      await waitFor(() => closeCodes.includes(4403), { message: 'refused with 4403' })
      assert.equal(refused.text.toString(), '')
    } finally {
      client.destroy()
      refused.destroy()
      await sync.close()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    }
  })

  it('stores a server-side change before any client sees it, and one that cannot be stored is seen by none', async () => {
    const inner = new MemoryStorage()
    let failing = false
    const storage = storageWith(inner, { append: (entries) => failing ? Promise.reject(new Error('disk full')) : inner.append(entries) })
    const sync = createSyncServer({ storage, logger: createLogger('silent') })
    const url = `ws://127.0.0.1:${(await sync.listen(0, '127.0.0.1')).port}`
    const client = connectClient(url, 'server-edits')
    try {
      await synced(client)
      // Several at once: each on top of the ones before, in order.
      await Promise.all(['a', 'b', 'c'].map((letter) => sync.transact('server-edits', (doc) => doc.getText('text').insert(doc.getText('text').length, letter))))
      await waitFor(() => client.text.toString() === 'abc', { message: 'the stored changes reached the client' })
      assert.equal((await inner.load('server-edits')).updates.length, 3)

      failing = true
      await assert.rejects(sync.transact('server-edits', (doc) => doc.getText('text').insert(0, 'NOT STORED')),
        (error) => error instanceof SyncError && error.code === 'STORAGE_UNAVAILABLE')
      // A client that joins now, and the room itself, hold only what was stored.
      const late = connectClient(url, 'server-edits')
      try {
        await synced(late)
        assert.equal(late.text.toString(), 'abc')
        assert.equal((await sync.openRoom('server-edits')).doc.getText('text').toString(), 'abc')
      } finally {
        late.destroy()
      }
      failing = false
      assert.equal(await sync.transact('server-edits', (doc) => { doc.getText('text').insert(3, 'd'); return 'done' }), 'done')
      await waitFor(() => client.text.toString() === 'abcd', { message: 'storage is back' })
    } finally {
      client.destroy()
      await sync.close()
    }
  })

  it('runs several servers in one process without sharing anything', async () => {
    const one = createSyncServer({ logger: createLogger('silent') })
    const two = createSyncServer({ logger: createLogger('silent') })
    try {
      await one.transact('same', (doc) => doc.getText('text').insert(0, 'one'))
      await two.transact('same', (doc) => doc.getText('text').insert(0, 'two'))
      const a = await one.openRoom('same')
      const b = await two.openRoom('same')
      assert.equal(a.doc.getText('text').toString(), 'one')
      assert.equal(b.doc.getText('text').toString(), 'two')
      a.release()
      b.release()
    } finally {
      await one.close()
      await two.close()
    }
  })

  it('rejects impossible options with a RangeError naming the option', () => {
    assert.throws(() => createSyncServer({ roomIdleMs: -1 }), /roomIdleMs/)
    assert.throws(() => createSyncServer({ maxMessageBytes: 10 }), /maxMessageBytes/)
    assert.throws(() => createSyncServer({ prefix: 'sync' }), /prefix/)
  })
})
