import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { createTokenAuthorize, signToken } from '../../server/tokens.js'
import * as protocol from '../../server/protocol.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { openRaw, type RawSocket } from '../helpers/raw-socket.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

const SECRET = 'integration-secret-0123456789'
const token = (room: string, mode: 'read' | 'write', ttlSeconds = 600, secret = SECRET, now?: number): Promise<string> =>
  signToken({ secret, room, mode, ttlSeconds, ...(now === undefined ? {} : { now }) })

/** Message types of every frame a socket received. */
const typesOf = (raw: RawSocket): number[] => raw.frames.map((frame) => frame[0]!)

describe('with AUTH_SECRET set', () => {
  let server: TestServer
  let attempts = 0
  const clients: Client[] = []
  const client = (room: string, params: Record<string, string>, doc?: (c: Client) => void): Client => {
    const c = connectClient(server.url, room, { params, connect: doc === undefined })
    if (doc !== undefined) {
      doc(c)
      c.provider.connect()
    }
    clients.push(c)
    return c
  }

  before(async () => {
    const authorize = createTokenAuthorize({ secret: SECRET })
    server = await startServer({
      authorize: (request, room) => {
        if (room.startsWith('count-')) attempts++
        return authorize(request, room)
      },
    })
  })
  after(async () => {
    for (const c of clients) c.destroy()
    await server.close()
  })

  it('refuses no token, an expired token, a forged signature and another room, leaking nothing of the room', async () => {
    const owner = client('secret-room', { token: await token('secret-room', 'write') })
    await synced(owner)
    owner.text.insert(0, 'confidential')
    owner.provider.awareness.setLocalStateField('user', { name: 'owner' })
    await waitFor(() => server.server.loadedRoom('secret-room')?.awareness.states.size === 1 &&
      server.server.loadedRoom('secret-room')?.doc.getText('text').toString() === 'confidential', { message: 'owner state on the server' })

    const now = Math.floor(Date.now() / 1000)
    const cases: Array<[string, string, number]> = [
      ['no token', '', 4401],
      ['expired', `?token=${await token('secret-room', 'write', 60, SECRET, now - 3600)}`, 4401],
      ['forged', `?token=${await token('secret-room', 'write', 600, 'not-the-secret-0123456789')}`, 4401],
      ['another room', `?token=${await token('other-room', 'write')}`, 4403],
      ['another room by prefix', `?token=${await token('secret-room-2*', 'write')}`, 4403],
    ]
    for (const [what, query, code] of cases) {
      const raw = await openRaw(server.url, `secret-room${query}`)
      // A well-behaved client would ask for the document and awareness at once: nothing must answer.
      raw.send(protocol.encodeSyncStep1(Y.encodeStateVector(new Y.Doc())))
      raw.send(protocol.encodeQueryAwareness())
      const closed = await raw.closed
      assert.equal(closed.code, code, what)
      assert.deepEqual(typesOf(raw), [protocol.MESSAGE_AUTH], `${what}: only the permission-denied message arrives`)
      assert.equal(protocol.decodeMessage(raw.frames[0]!).type, 'auth')
    }
  })

  it('the stock client stops after a refusal instead of retrying in a loop', async () => {
    const now = Math.floor(Date.now() / 1000)
    const params: Array<[string, Record<string, string>]> = [
      ['count-a', {}],
      ['count-b', { token: await token('count-b', 'write', 60, SECRET, now - 3600) }],
      ['count-c', { token: await token('count-c', 'write', 600, 'not-the-secret-0123456789') }],
      ['count-d', { token: await token('elsewhere', 'write') }],
    ]
    const closedEvents: number[] = []
    const closes: number[][] = params.map(() => [])
    // Listeners go on before connecting: a refusal can arrive within a millisecond.
    const refused = params.map(([room, query], i) => client(room, query, (c) => {
      c.provider.on('closed', ({ code }: { code: number }) => closedEvents.push(code))
      c.provider.on('connection-close', (event: { code: number } | null) => closes[i]!.push(event?.code ?? -1))
    }))
    await waitFor(() => closedEvents.length === 4, { timeoutMs: 20_000, message: `every refused client gave up (closes seen: ${JSON.stringify(closes)}, socket states ${JSON.stringify(refused.map((c) => c.provider.ws?.readyState ?? null))}, authorize calls ${attempts})` })
    assert.deepEqual(closedEvents.sort(), [4401, 4401, 4401, 4403])
    // Unchecked, the stock client reconnects after 200 ms, 400 ms, 800 ms...: 1.5 s would see several.
    const seen = attempts
    await assert.rejects(waitFor(() => attempts > seen, { timeoutMs: 1500, message: 'a retry' }), /timed out/)
    assert.equal(attempts, 4, 'one connection attempt per refused client')
    for (const c of refused) assert.equal(c.text.toString(), '')
  })

  it('accepts a token in ?token= and in Authorization: Bearer', async () => {
    const write = await token('notes', 'write')
    const a = client('notes', { token: write })
    await synced(a)
    a.text.insert(0, 'hello')
    const bearer = await openRaw(server.url, 'notes', { authorization: `Bearer ${write}` })
    await waitFor(() => bearer.frames.length > 0, { message: 'sync step 1 over a Bearer socket' })
    assert.equal(bearer.ws.readyState, WebSocket.OPEN)
    bearer.ws.close()
  })

  it('a read-only client sees every edit, changes nothing, and its awareness is relayed', async () => {
    const room = 'read-only'
    const writer = client(room, { token: await token(room, 'write') })
    const other = client(room, { token: await token(room, 'write') })
    await Promise.all([synced(writer), synced(other)])
    writer.text.insert(0, 'by writer. ')
    // A reader that edited while offline: its sync step 2 carries the edit.
    const reader = client(room, { token: await token(room, 'read') }, (c) => c.text.insert(0, 'offline edit by reader. '))
    await synced(reader)
    await waitFor(() => reader.text.toString().includes('by writer.'), { message: 'reader sees the writer' })
    reader.text.insert(reader.text.length, 'live edit by reader.')
    reader.provider.awareness.setLocalStateField('user', { name: 'reader' })
    // Awareness travels on the same socket after the edit: once it is relayed, the edit was handled.
    await waitFor(() => [...writer.provider.awareness.getStates().values()].some((s) => s.user?.name === 'reader'), { message: 'reader awareness relayed' })
    other.text.insert(other.text.length, 'by other.')
    await converged([writer, other], { expected: 'by writer. by other.' })
    await waitFor(() => reader.text.toString().includes('by other.'), { message: 'reader sees the other writer' })
    const stored = await server.server.openRoom(room)
    try {
      assert.equal(stored.doc.getText('text').toString(), 'by writer. by other.')
    } finally {
      stored.release()
    }
    const persisted = new Y.Doc()
    for (const update of (await server.server.storage.load(room)).updates) Y.applyUpdate(persisted, update)
    assert.doesNotMatch(persisted.getText('text').toString(), /reader/)
  })

  it('answers a read-only update with permission denied and keeps the socket open', async () => {
    const room = 'read-only-raw'
    const raw = await openRaw(server.url, `${room}?token=${await token(room, 'read')}`)
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'sneaky')
    raw.send(protocol.encodeSyncStep2(Y.encodeStateAsUpdate(doc)))
    raw.send(protocol.encodeSyncUpdate(Y.encodeStateAsUpdate(doc)))
    await waitFor(() => typesOf(raw).filter((t) => t === protocol.MESSAGE_AUTH).length === 2, { message: 'two permission-denied answers' })
    assert.equal(raw.ws.readyState, WebSocket.OPEN)
    const stored = await server.server.openRoom(room)
    assert.equal(stored.doc.getText('text').toString(), '')
    stored.release()
    raw.ws.close()
  })
})

describe('the token helper', () => {
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'token-cli.js')

  it('prints a token the server accepts, with the secret from AUTH_SECRET or --secret', async () => {
    const run = promisify(execFile)
    const fromEnv = await run(process.execPath, [cli, '--room', 'team/*', '--mode', 'read', '--ttl', '1h'], { env: { ...process.env, AUTH_SECRET: SECRET } })
    const fromFlag = await run(process.execPath, [cli, '--room=notes', '--secret', SECRET])
    const authorize = createTokenAuthorize({ secret: SECRET })
    const request = (token: string, url: string) => ({ url: `${url}?token=${token.trim()}`, headers: {} }) as never
    assert.equal((await authorize(request(fromEnv.stdout, '/team/a'), 'team/a')).mode, 'read')
    assert.equal((await authorize(request(fromFlag.stdout, '/notes'), 'notes')).mode, 'write')
    await assert.rejects(run(process.execPath, [cli, '--room', 'x'], { env: { ...process.env, AUTH_SECRET: '' } }), /no secret/)
  })
})

describe('HTTP requests under the same checks', () => {
  let server: TestServer

  before(async () => {
    server = await startServer({ authorize: createTokenAuthorize({ secret: SECRET }), allowedOrigins: ['https://app.example.com'] })
    await server.server.transact('http-room', (doc) => doc.getText('text').insert(0, 'over http'))
  })
  after(async () => { await server.close() })

  it('the document API takes Authorization: Bearer and ?token=, and refuses with 401, 403 and 400', async () => {
    const read = await token('http-room', 'read')
    const other = await token('other-room', 'write')
    const get = (path: string, headers: Record<string, string> = {}): Promise<number> =>
      fetch(`${server.http}${path}`, { headers }).then(async (response) => { await response.arrayBuffer(); return response.status })
    assert.equal(await get('/api/docs/http-room'), 401)
    assert.equal(await get('/api/docs/http-room', { authorization: `Bearer ${read}` }), 200)
    assert.equal(await get(`/api/docs/http-room?token=${read}`), 200)
    assert.equal(await get('/api/docs/http-room', { authorization: `Bearer ${other}` }), 403)
    assert.equal(await get('/api/docs/http-room', { authorization: `Bearer ${read}`, origin: 'https://evil.example' }), 403)
    assert.equal(await get('/api/docs/a|b', { authorization: `Bearer ${read}` }), 400)
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'by a reader')
    const post = await fetch(`${server.http}/api/docs/http-room/update`, {
      method: 'POST', headers: { authorization: `Bearer ${read}`, 'content-type': 'application/octet-stream' }, body: Y.encodeStateAsUpdate(doc),
    })
    await post.arrayBuffer()
    assert.equal(post.status, 403, 'a read-only token cannot change the document over HTTP')
  })

  it('long polls need a token too', async () => {
    const poll = (query: string): Promise<number> =>
      fetch(`${server.http}/poll/http-room?op=send${query}`, { method: 'POST', body: new Uint8Array(0) })
        .then(async (response) => { await response.arrayBuffer(); return response.status })
    assert.equal(await poll(''), 401)
    assert.equal(await poll(`&token=${await token('other-room', 'write')}`), 403)
    assert.equal(await poll(`&token=${await token('http-room', 'write')}`), 200)
  })
})
