import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, describe, it } from 'node:test'
import WebSocket from 'ws'
import * as protocol from '../../server/protocol.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { openRaw } from '../helpers/raw-socket.js'
import { startServer, type TestServer } from '../helpers/server.js'
import type { SyncServerOptions } from '../../server/options.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { storageWith } from '../helpers/storage.js'
import { once, waitFor } from '../helpers/wait.js'

/** Opens a socket and reports how the server answered: `open`, or the HTTP status of a refused upgrade. */
const attempt = (url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket, status: number | 'open' }> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.on('error', () => {})
    ws.once('open', () => resolve({ ws, status: 'open' }))
    ws.once('unexpected-response', (_request, response) => {
      resolve({ ws, status: response.statusCode ?? 0 })
      response.resume()
      ws.terminate()
    })
    ws.once('close', (code) => reject(new Error(`closed with ${code} before opening`)))
  })

describe('limits', () => {
  const servers: TestServer[] = []
  const clients: Client[] = []
  const sockets: WebSocket[] = []
  const serve = async (options: SyncServerOptions): Promise<TestServer> => {
    const server = await startServer(options)
    servers.push(server)
    return server
  }
  const pair = async (server: TestServer, room: string): Promise<[Client, Client]> => {
    const a = connectClient(server.url, room)
    const b = connectClient(server.url, room)
    clients.push(a, b)
    await Promise.all([synced(a), synced(b)])
    return [a, b]
  }
  /** The peers of `room` still converge after one of their neighbours was thrown out. */
  const stillConverge = async ([a, b]: [Client, Client], text: string): Promise<void> => {
    a.text.insert(a.text.length, text)
    await converged([a, b], { expected: a.text.toString() })
    assert.ok(a.provider.wsconnected && b.provider.wsconnected)
  }

  after(async () => {
    for (const c of clients) c.destroy()
    for (const ws of sockets) ws.terminate()
    for (const s of servers) await s.close()
  })

  it('refuses a cross-origin upgrade with a disallowed Origin (4403), nothing of the room sent', async () => {
    const server = await serve({ allowedOrigins: ['https://app.example.com'] })
    await server.server.transact('origin', (doc) => doc.getText('text').insert(0, 'private'))
    const evil = await openRaw(server.url, 'origin', { origin: 'https://evil.example' })
    assert.equal((await evil.closed).code, 4403)
    assert.deepEqual(evil.frames.map((f) => f[0]), [protocol.MESSAGE_AUTH])
    const good = await openRaw(server.url, 'origin', { origin: 'https://app.example.com' })
    await waitFor(() => good.frames.length > 0, { message: 'allowed origin syncs' })
    good.ws.close()
    const noOrigin = await openRaw(server.url, 'origin')
    await waitFor(() => noOrigin.frames.length > 0, { message: 'a non-browser client (no Origin) syncs' })
    noOrigin.ws.close()
  })

  it('refuses bad room names with 4400 and takes percent-encoded ones', async () => {
    const server = await serve({ maxRoomNameLength: 64 })
    for (const room of ['x'.repeat(65), 'a|b', 'a%zz']) {
      const raw = await openRaw(server.url, room)
      assert.equal((await raw.closed).code, 4400, room)
      assert.deepEqual(raw.frames.map((f) => f[0]), [protocol.MESSAGE_AUTH])
    }
    const empty = await openRaw(server.url, '')
    assert.equal((await empty.closed).code, 4400)
    const c = connectClient(server.url, 'héllo wörld')
    clients.push(c)
    await synced(c)
    assert.ok(server.server.loadedRoom('h%C3%A9llo%20w%C3%B6rld'))
  })

  it('closes a socket whose frame is over the size limit with 1009; its peers go on', async () => {
    const server = await serve({ maxMessageBytes: 64 * 1024 })
    const peers = await pair(server, 'big')
    const raw = await openRaw(server.url, 'big')
    raw.send(protocol.encodeSyncUpdate(new Uint8Array(100 * 1024)))
    assert.equal((await raw.closed).code, 1009)
    await stillConverge(peers, 'still here')
  })

  it('closes a socket over its message rate with 4529, transient, and pauses its address; its peers go on', async () => {
    const server = await serve({ messagesPerSecond: 20, messageBurst: 40 })
    const peers = await pair(server, 'flood')
    const raw = await openRaw(server.url, 'flood')
    for (let i = 0; i < 200; i++) raw.send(protocol.encodeQueryAwareness())
    const closed = await raw.closed
    assert.equal(closed.code, 4529)
    // The stock client reconnects (4529 is not final) into a pause: refused before the upgrade, it backs off.
    const refused = await attempt(`${server.url}/flood`)
    sockets.push(refused.ws)
    assert.equal(refused.status, 429)
    await stillConverge(peers, 'still here')
  })

  it('closes with 4429, final, only a socket whose address went over the rate again and again', async () => {
    const server = await serve({ messagesPerSecond: 20, messageBurst: 40 })
    const codes: number[] = []
    for (let strike = 1; strike <= 4; strike++) {
      const raw = await waitFor(async () => {
        const opened = await openRaw(server.url, 'flood-again')
        if (opened.ws.readyState === WebSocket.OPEN) return opened
        return null
      }, { timeoutMs: 20_000, intervalMs: 250, message: `the pause after strike ${strike - 1} to end` })
      for (let i = 0; i < 200; i++) raw.send(protocol.encodeQueryAwareness())
      codes.push((await raw.closed).code)
    }
    assert.deepEqual(codes, [4529, 4529, 4529, 4429])
  })

  it('refuses connections over the per-address limit with 503, reading X-Forwarded-For only when trusted', async () => {
    const direct = await serve({ maxConnectionsPerIp: 2 })
    const open = [await attempt(`${direct.url}/ip`), await attempt(`${direct.url}/ip`)]
    sockets.push(...open.map((o) => o.ws))
    assert.deepEqual(open.map((o) => o.status), ['open', 'open'])
    // Without TRUST_PROXY a forged header changes nothing.
    assert.equal((await attempt(`${direct.url}/ip`, { 'x-forwarded-for': '9.9.9.9' })).status, 503)
    open[0]!.ws.close()
    await waitFor(() => direct.server.connections === 1, { message: 'slot freed' })
    const again = await attempt(`${direct.url}/ip`)
    sockets.push(again.ws)
    assert.equal(again.status, 'open')

    const proxied = await serve({ maxConnectionsPerIp: 1, trustProxy: 1 })
    const first = await attempt(`${proxied.url}/ip`, { 'x-forwarded-for': '1.1.1.1' })
    const second = await attempt(`${proxied.url}/ip`, { 'x-forwarded-for': '2.2.2.2' })
    const third = await attempt(`${proxied.url}/ip`, { 'x-forwarded-for': '6.6.6.6, 1.1.1.1' })
    sockets.push(first.ws, second.ws, third.ws)
    assert.deepEqual([first.status, second.status, third.status], ['open', 'open', 503])
  })

  it('frees the slot of an upgrade that fails the handshake, or whose client leaves while it is authorized', async () => {
    let openGate: () => void = () => {}
    const gate = new Promise<void>((resolve) => { openGate = resolve })
    let authorizing = false
    const server = await serve({
      maxConnectionsPerIp: 1,
      authorize: async (request) => {
        if (request.url?.includes('slow') === true) {
          authorizing = true
          await gate
        }
        return { mode: 'write' }
      },
    })
    /** The address's one slot is free: a client gets it (and gives it back). */
    const slotFree = async (): Promise<void> => {
      const result = await attempt(`${server.url}/slots`)
      assert.equal(result.status, 'open')
      result.ws.close()
      await once(result.ws, 'close')
      await waitFor(() => server.server.connections === 0, { message: 'the slot is given back' })
    }
    // Upgrades that ws refuses itself (400), each after the server took a slot for it.
    const { port } = new URL(server.url)
    for (const key of ['not-a-key', '', 'x'.repeat(30)]) {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.write(`GET /slots HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`)
        })
        let data = ''
        socket.on('data', (chunk) => { data += chunk.toString() })
        socket.on('close', () => resolve(data.split('\r\n')[0]!))
        socket.on('error', reject)
      })
      assert.match(answer, /^HTTP\/1\.1 400/, `key ${JSON.stringify(key)}`)
    }
    await slotFree()
    // A client that gives up while its authorization is pending.
    const quitter = new WebSocket(`${server.url}/slow`)
    quitter.on('error', () => {})
    await waitFor(() => authorizing, { message: 'the upgrade is being authorized' })
    quitter.terminate()
    await once(quitter, 'close')
    openGate()
    await slotFree()
  })

  it('closes a socket that sends more than two frames\' worth of bytes while its room loads with 1013', async () => {
    const inner = new MemoryStorage()
    let loadRoom: () => void = () => {}
    const gate = new Promise<void>((resolve) => { loadRoom = resolve })
    const storage = storageWith(inner, { load: async (room) => { await gate; return await inner.load(room) } })
    const server = await serve({ storage, maxMessageBytes: 64 * 1024 })
    const raw = await openRaw(server.url, 'slow-load')
    for (let i = 0; i < 3; i++) raw.send(protocol.encodeSyncUpdate(new Uint8Array(60 * 1024)))
    assert.equal((await raw.closed).code, 1013)
    loadRoom()
    const c = connectClient(server.url, 'slow-load')
    clients.push(c)
    await synced(c)
  })

  it('refuses connections over the per-room and per-instance limits with 503', async () => {
    const server = await serve({ maxConnectionsPerRoom: 2, maxConnections: 3 })
    const results = []
    for (const room of ['r1', 'r1', 'r1', 'r2', 'r3']) {
      const result = await attempt(`${server.url}/${room}`)
      sockets.push(result.ws)
      results.push(result.status)
    }
    assert.deepEqual(results, ['open', 'open', 503, 'open', 503])
  })

  it('unloads the least recently used idle room to make space, and refuses a new room when all are in use', async () => {
    const server = await serve({ maxRooms: 2, roomIdleMs: 60_000 })
    const a = connectClient(server.url, 'lru-a')
    const b = connectClient(server.url, 'lru-b')
    clients.push(a, b)
    await Promise.all([synced(a), synced(b)])
    a.text.insert(0, 'kept')
    await waitFor(async () => { await server.server.loadedRoom('lru-a')?.flushed(); return server.server.loadedRoom('lru-a')?.doc.getText('text').length === 4 }, { message: 'a stored' })
    const refused = await attempt(`${server.url}/lru-c`)
    assert.equal(refused.status, 503)
    a.provider.disconnect()
    await waitFor(() => server.server.loadedRoom('lru-a')?.holds === 0, { message: 'room a idle' })
    const c = connectClient(server.url, 'lru-c')
    clients.push(c)
    await synced(c)
    assert.equal(server.server.loadedRoom('lru-a'), undefined, 'the idle room was unloaded')
    assert.ok(server.server.loadedRoom('lru-b'), 'the room in use stayed')
    c.destroy()
    await waitFor(() => server.server.loadedRoom('lru-c')?.holds === 0, { message: 'room c idle' })
    a.provider.connect()
    await synced(a)
    assert.equal(a.text.toString(), 'kept')
  })

  it('lets a client join a document bigger than the unsent-data bound, and keeps it', async () => {
    // Bigger than what the loopback's kernel buffers take at once, so that the step 2 waits in the socket.
    const size = 24 * 1024 * 1024
    const server = await serve({ maxBufferedBytes: 1024 * 1024, maxMessageBytes: 32 * 1024 * 1024 })
    await server.server.transact('big', (doc) => doc.getText('text').insert(0, 'x'.repeat(size)))
    const [a, b] = await pair(server, 'big')
    assert.equal(a.text.length, size)
    const closes: number[] = []
    for (const c of [a, b]) c.provider.on('connection-close', (event: { code: number } | null) => closes.push(event?.code ?? 0))
    await stillConverge([a, b], 'and more')
    assert.deepEqual(closes, [])
  })

  it('closes a consumer that stops reading with 4508 once its unsent data passes the bound', async () => {
    const server = await serve({ maxBufferedBytes: 256 * 1024, maxMessageBytes: 4 * 1024 * 1024 })
    const peers = await pair(server, 'slow')
    const slow = await openRaw(server.url, 'slow')
    await waitFor(() => slow.frames.length > 0, { message: 'slow consumer joined' })
    const tcp = (slow.ws as unknown as { _socket: import('node:net').Socket })._socket
    tcp.pause()
    // Enough to fill both kernel socket buffers on loopback and then the bound.
    const chunk = 'x'.repeat(1024 * 1024)
    for (let i = 0; i < 32; i++) await server.server.transact('slow', (doc) => doc.getText('bulk').insert(0, chunk))
    tcp.resume()
    const closed = await slow.closed
    assert.equal(closed.code, 4508)
    await stillConverge(peers, 'still here')
  })
})
