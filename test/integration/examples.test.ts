import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as expressExample from '../../examples/express-app.js'
import * as httpExample from '../../examples/http-server.js'
import { connectClient, synced, type Client } from '../helpers/clients.js'
import { waitFor } from '../helpers/wait.js'

type Running = httpExample.RunningExample

/** Resolves with the code of the client's first socket close. */
const closeCode = (client: Client): Promise<number> => new Promise((resolve) => {
  client.provider.once('connection-close', (event: { code: number } | null) => resolve(event?.code ?? -1))
})

describe('examples/http-server: a sync server inside node:http', () => {
  let running: Running | null = null
  const clients: Client[] = []
  after(async () => {
    for (const client of clients) client.destroy()
    await running?.close()
  })

  it('serves the app, the rooms and the API side by side, with the authorize hook, and closes', async () => {
    running = await httpExample.start(0)
    const http = `http://127.0.0.1:${running.port}`
    const ws = `ws://127.0.0.1:${running.port}`
    assert.equal(await (await fetch(`${http}/`)).text(), 'my app\n')
    // The greeting written by server code at start-up, read over the document API by an anonymous reader.
    assert.deepEqual(await (await fetch(`${http}/api/docs/welcome`)).json(), { text: 'Hello from the server\n' })

    const writer = connectClient(ws, 'welcome', { params: { key: 'let-me-write' } })
    clients.push(writer)
    await synced(writer)
    assert.equal(writer.text.toString(), 'Hello from the server\n')

    // A client's edit reaches server code; a server-side edit reaches the client.
    writer.text.insert(writer.text.length, 'hi from a client')
    const room = await running.sync.openRoom('welcome')
    try {
      await waitFor(() => room.doc.getText('text').toString().endsWith('hi from a client'), { message: 'the client edit on the server' })
    } finally {
      room.release()
    }
    await running.sync.transact('welcome', (doc) => doc.getText('text').insert(0, '# '))
    await waitFor(() => writer.text.toString().startsWith('# Hello'), { message: 'the server edit at the client' })

    // authorize: a private room needs the key; the refusal is final (4401), not retried.
    const stranger = connectClient(ws, 'private-plans')
    clients.push(stranger)
    assert.equal(await closeCode(stranger), 4401)
    const readOnlyPost = await fetch(`${http}/api/docs/welcome/update`, { method: 'POST', body: new Uint8Array([0, 0]) })
    assert.equal(readOnlyPost.status, 403)

    await running.close()
    running = null
    await assert.rejects(fetch(`${http}/`))
  })
})

describe('examples/express-app: an Express app mounting the sync server at /sync/', () => {
  let running: Running | null = null
  const clients: Client[] = []
  after(async () => {
    for (const client of clients) client.destroy()
    await running?.close()
  })

  it('serves rooms under /sync/, lets app routes read and change documents, and closes', async () => {
    running = await expressExample.start(0)
    const http = `http://127.0.0.1:${running.port}`
    const ws = `ws://127.0.0.1:${running.port}/sync`
    assert.equal(await (await fetch(`${http}/`)).text(), 'my app\n')

    const alice = connectClient(ws, 'notes', { params: { user: 'alice' } })
    clients.push(alice)
    await synced(alice)

    // An app route changes the document from server code; the change reaches the client.
    const posted = await fetch(`${http}/notes/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ line: 'from the app' }),
    })
    assert.equal(posted.status, 200)
    await waitFor(() => alice.text.toString() === 'from the app\n', { message: 'the app edit at the client' })

    // The client's edit is readable by an app route.
    alice.text.insert(alice.text.length, 'from alice')
    await waitFor(async () => {
      const body = await (await fetch(`${http}/notes/notes`)).json() as { text: string }
      return body.text === 'from the app\nfrom alice'
    }, { message: 'the client edit through the app route' })

    // The sync server's own routes answer under the mount path, with the same authorize hook.
    const json = await fetch(`${http}/sync/api/docs/notes?user=viewer`)
    assert.equal(json.status, 200)
    assert.deepEqual(await json.json(), { text: 'from the app\nfrom alice' })
    assert.equal((await fetch(`${http}/sync/api/docs/notes/update?user=viewer`, { method: 'POST', body: new Uint8Array([0, 0]) })).status, 403)
    assert.equal((await fetch(`${http}/sync/api/docs/notes`)).status, 401)
    assert.equal((await fetch(`${http}/sync/metrics`)).status, 200)

    const anonymous = connectClient(ws, 'notes')
    clients.push(anonymous)
    assert.equal(await closeCode(anonymous), 4401)

    // App routes name rooms as sockets do, by the raw path; bad names and bodies get a 400 as text.
    const spaced = connectClient(ws, 'my notes', { params: { user: 'bob' } })
    clients.push(spaced)
    await synced(spaced)
    const line = (room: string, body: string): Promise<Response> =>
      fetch(`${http}/notes/${room}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    assert.equal((await line('my%20notes', JSON.stringify({ line: 'spaced' }))).status, 200)
    await waitFor(() => spaced.text.toString() === 'spaced\n', { message: 'the app edit in the room the socket named' })
    const badRoom = await line('a|b', JSON.stringify({ line: 'x' }))
    assert.equal(badRoom.status, 400)
    assert.match(await badRoom.text(), /room name may hold only/)
    assert.equal((await line('a%zz', JSON.stringify({ line: 'x' }))).status, 400)
    const badBody = await line('notes', '{not json')
    assert.equal(badBody.status, 400)
    assert.doesNotMatch(await badBody.text(), /<html|at .*\.js/i)

    await running.close()
    running = null
    await assert.rejects(fetch(`${http}/`))
  })
})
