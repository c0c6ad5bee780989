import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import WebSocket from 'ws'
import * as Y from 'yjs'
import type { Access } from '../../server/access.js'
import { SyncError } from '../../server/errors.js'
import { createTokenAuthorize, signToken } from '../../server/tokens.js'
import { pollChannel } from '../../web/poll-channel.js'
import { RelayProvider, type ConnectionClose } from '../../web/provider.js'
import { snapshot } from '../../web/connection-state.js'
import { websocketChannel, type WebSocketConstructor } from '../../web/websocket-channel.js'
import { connectChannelClient, type ChannelClient } from '../helpers/channel-client.js'
import { connectClient, synced, type Client } from '../helpers/clients.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

const SECRET = 'session-end-secret-0123456789'
/** createTokenAuthorize's default: a session ends this long after its token's `exp`. */
const TOLERANCE_MS = 5000

const cleanups: Array<() => Promise<unknown> | unknown> = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})
const start = async (authorize = createTokenAuthorize({ secret: SECRET })): Promise<TestServer> => {
  const server = await startServer({ authorize })
  cleanups.push(() => server.close())
  return server
}
const socketClient = (server: TestServer, room: string, token: string): Client => {
  const client = connectClient(server.url, room, { params: { token } })
  cleanups.push(() => client.destroy())
  return client
}
const pollClient = (server: TestServer, room: string, token: string): ChannelClient => {
  const client = connectChannelClient(pollChannel(), { serverUrl: server.url, room, params: { token } })
  cleanups.push(() => client.destroy())
  return client
}
const expOf = (token: string): number => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number

describe('sessions that end with their token', () => {
  it('closes a --ttl 3s socket and long poll with 4401 "token expired" at exp plus the tolerance; they see nothing written after', async () => {
    const server = await start()
    const room = 'short'
    const short = await signToken({ secret: SECRET, room, mode: 'write', ttlSeconds: 3 })
    const long = await signToken({ secret: SECRET, room, mode: 'write', ttlSeconds: 3600 })
    const writer = socketClient(server, room, long)
    const socket = socketClient(server, room, short)
    const poll = pollClient(server, room, short)
    const socketCloses: Array<{ code: number, reason: string, at: number }> = []
    socket.provider.on('connection-close', (event) => {
      if (event !== null) socketCloses.push({ code: event.code, reason: event.reason, at: Date.now() })
    })
    await Promise.all([synced(writer), synced(socket), waitFor(() => poll.synced, { message: 'poll client sync' })])

    writer.text.insert(0, 'before;')
    await waitFor(() => socket.text.toString() === 'before;' && poll.text.toString() === 'before;', { message: 'both get the edit made before' })
    const end = expOf(short) * 1000 + TOLERANCE_MS
    await waitFor(() => socketCloses.length > 0 && poll.closes.length > 0, { timeoutMs: end - Date.now() + 5000, message: 'both closed' })
    const [close] = socketCloses
    assert.deepEqual({ code: close!.code, reason: close!.reason }, { code: 4401, reason: 'token expired' })
    assert.ok(close!.at >= end - 50, `not closed before exp + ${TOLERANCE_MS} ms (${end - close!.at} ms early)`)
    assert.ok(close!.at <= end + 2000, `closed ${close!.at - end} ms after exp + ${TOLERANCE_MS} ms`)
    assert.equal(poll.closes[0]!.code, 4401, `poll closes: ${JSON.stringify(poll.closes)}`)
    assert.match(poll.closes[0]!.reason, /token expired/)

    writer.text.insert(writer.text.length, 'after;')
    const witness = socketClient(server, room, long)
    await waitFor(() => witness.text.toString() === 'before;after;', { message: 'a fresh client has the edit made after' })
    assert.equal(socket.text.toString(), 'before;', 'the expired socket saw nothing written after')
    assert.equal(poll.text.toString(), 'before;', 'the expired poll client saw nothing written after')
    // 4401 is final for the stock client: it does not come back with the dead token.
    assert.equal(socket.provider.shouldConnect, false)
    assert.equal(socketCloses.length, 1)
    assert.equal(poll.closes.length, 1)
  })

  it('ends a socket at the expiresAt an embedder\'s authorize returns, and refuses one that is not a time', async () => {
    let expiresAt: number = Date.now() + 300
    const server = await start((): Access => ({ mode: 'write', expiresAt }))
    const client = socketClient(server, 'embedder', 'unused')
    const closes: number[] = []
    client.provider.on('connection-close', (event) => { if (event !== null) closes.push(event.code) })
    await waitFor(() => closes.length > 0, { message: 'the socket closed at expiresAt' })
    assert.equal(closes[0], 4401)
    client.destroy()

    expiresAt = Number.NaN
    const refused = socketClient(server, 'embedder', 'unused')
    const refusals: number[] = []
    refused.provider.on('connection-close', (event) => { if (event !== null) refusals.push(event.code) })
    await waitFor(() => refusals.length > 0, { message: 'the socket refused' })
    assert.equal(refusals[0], new SyncError('INTERNAL').closeCode)
  })
})

describe('the web provider\'s getToken', () => {
  const channel = websocketChannel({ WebSocket: WebSocket as unknown as WebSocketConstructor })
  const provider = (server: TestServer, room: string, options: { getToken?: () => Promise<string>, params?: Record<string, string> }): { provider: RelayProvider, closes: ConnectionClose[], text: Y.Text } => {
    const doc = new Y.Doc()
    const relay = new RelayProvider(server.url, room, doc, { channel, ...options })
    const closes: ConnectionClose[] = []
    relay.on('connection-close', (event) => closes.push(event))
    cleanups.push(() => { relay.destroy(); doc.destroy() })
    return { provider: relay, closes, text: doc.getText('text') }
  }

  it('is called before every connection, and renews a session that ended with its token', async () => {
    // No tolerance: each 3 s session ends at its exp.
    const server = await start(createTokenAuthorize({ secret: SECRET, clockToleranceSeconds: 0 }))
    const room = 'renewed'
    let calls = 0
    const renewing = provider(server, room, { getToken: async () => { calls++; return signToken({ secret: SECRET, room, mode: 'write', ttlSeconds: 3 }) } })
    await waitFor(() => renewing.provider.synced, { message: 'first sync' })
    assert.equal(calls, 1)
    await waitFor(() => renewing.closes.length > 0, { timeoutMs: 6000, message: 'the first session ends' })
    assert.equal(renewing.closes[0]!.code, 4401)
    assert.equal(renewing.closes[0]!.final, false, 'with getToken, token expired is not final')
    await waitFor(() => calls === 2 && renewing.provider.synced, { message: 'a second connection with a second token' })
    const writer = socketClient(server, room, await signToken({ secret: SECRET, room, mode: 'write', ttlSeconds: 3600 }))
    writer.text.insert(0, 'renewed')
    await waitFor(() => renewing.text.toString() === 'renewed', { message: 'the renewed session receives' })
  })

  it('without getToken, stops at token expired, and the editor page says the session expired', async () => {
    const server = await start(createTokenAuthorize({ secret: SECRET, clockToleranceSeconds: 0 }))
    const token = await signToken({ secret: SECRET, room: 'page', mode: 'write', ttlSeconds: 3 })
    const page = provider(server, 'page', { params: { token } })
    const stops: Array<{ code: number, reason: string }> = []
    page.provider.on('closed', (event) => stops.push(event))
    await waitFor(() => stops.length > 0, { timeoutMs: 6000, message: 'the session ends' })
    assert.deepEqual(stops, [{ code: 4401, reason: 'token expired' }])
    assert.equal(page.provider.shouldConnect, false)
    const status = snapshot(page.provider, stops[0]!, true, Date.now())
    assert.equal(status.state, 'expired')
    assert.match(status.text, /^Session expired: .*Ask for a new link/)
  })

  it('lets disconnect() end an attempt still waiting for its token', async () => {
    const server = await start()
    const waiting = provider(server, 'waiting', { getToken: () => new Promise<string>(() => {}) })
    assert.equal(waiting.provider.status, 'connecting')
    waiting.provider.disconnect()
    assert.equal(waiting.provider.status, 'disconnected')
    assert.equal(waiting.closes.at(-1)?.local, true)
  })
})
