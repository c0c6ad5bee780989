import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { SyncError } from '../../server/errors.js'
import { createLogger } from '../../server/log.js'
import { SyncServer } from '../../server/sync-server.js'
import { backoffCeiling, backoffDelay, backoffOptions } from '../../web/backoff.js'
import type { ChannelFactory } from '../../web/channel.js'
import { fallbackChannel } from '../../web/fallback-channel.js'
import { pollChannel } from '../../web/poll-channel.js'
import { RelayProvider, type ConnectionClose, type ProviderOptions, type ReconnectScheduled } from '../../web/provider.js'
import { websocketChannel, type WebSocketConstructor } from '../../web/websocket-channel.js'
import { connectClient, synced } from '../helpers/clients.js'
import { waitFor } from '../helpers/wait.js'

const ws = websocketChannel({ WebSocket: WebSocket as unknown as WebSocketConstructor })
const log = createLogger('silent')

interface TestClient {
  readonly doc: Y.Doc
  readonly text: Y.Text
  readonly provider: RelayProvider
  readonly closes: ConnectionClose[]
  readonly retries: ReconnectScheduled[]
}

const clients: TestClient[] = []
const open = (url: string, room: string, options: Partial<ProviderOptions> = {}): TestClient => {
  const doc = new Y.Doc()
  const provider = new RelayProvider(url, room, doc, { channel: ws, ...options })
  const client = { doc, text: doc.getText('text'), provider, closes: [] as ConnectionClose[], retries: [] as ReconnectScheduled[] }
  provider.on('connection-close', (event) => client.closes.push(event))
  provider.on('reconnect-scheduled', (event) => client.retries.push(event))
  clients.push(client)
  return client
}

/** A port that accepts TCP connections and cuts them at once: every WebSocket attempt fails with 1006. */
const cutters: Array<ReturnType<typeof createServer>> = []
const deadPort = async (): Promise<number> => {
  const server = createServer((socket) => socket.destroy())
  cutters.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as { port: number }).port
}

/** A seeded generator, so the jitter the tests see is the same on every run. */
const seeded = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

describe('backoff', () => {
  test('the ceiling doubles per attempt and stops at the cap', () => {
    const backoff = backoffOptions({ initialMs: 100, maxMs: 1000 })
    assert.deepEqual([0, 1, 2, 3, 4, 5, 40].map((n) => backoffCeiling(n, backoff)), [100, 200, 400, 800, 1000, 1000, 1000])
  })

  test('every delay lies in the upper half of its ceiling, and random draws differ', () => {
    const backoff = backoffOptions({ initialMs: 100, maxMs: 1000 })
    const random = seeded(7)
    const delays = Array.from({ length: 200 }, (_, i) => ({ attempt: i % 8, delay: backoffDelay(i % 8, backoff, random) }))
    for (const { attempt, delay } of delays) {
      const ceiling = backoffCeiling(attempt, backoff)
      assert.ok(delay >= ceiling / 2 && delay <= ceiling, `attempt ${attempt}: ${delay} not in [${ceiling / 2}, ${ceiling}]`)
    }
    assert.ok(new Set(delays.filter((d) => d.attempt === 7).map((d) => d.delay)).size > 10, 'capped delays are spread, not identical')
  })

  test('impossible options are RangeErrors', () => {
    assert.throws(() => backoffOptions({ initialMs: 0 }), RangeError)
    assert.throws(() => backoffOptions({ initialMs: 500, maxMs: 100 }), RangeError)
  })
})

describe('RelayProvider against the real server', () => {
  let server: SyncServer
  let url: string
  let refused: SyncServer
  let refusedUrl: string
  let upgradesRefused = 0

  before(async () => {
    server = new SyncServer({ logger: log, demo: true, roomIdleMs: 0 })
    url = `ws://127.0.0.1:${(await server.listen(0)).port}`
    refused = new SyncServer({
      logger: log,
      authorize: () => {
        upgradesRefused++
        throw new SyncError('FORBIDDEN', 'not your room')
      },
    })
    refusedUrl = `ws://127.0.0.1:${(await refused.listen(0)).port}`
  })

  after(async () => {
    for (const client of clients) {
      client.provider.destroy()
      client.doc.destroy()
    }
    await server.close()
    await refused.close()
    for (const cutter of cutters) cutter.close()
  })

  test('two providers sync text and awareness, and share a room named with a space, a slash and unicode with a stock y-websocket client', async () => {
    const a = open(url, 'sync room/ü')
    const b = open(url, 'sync room/ü')
    const stock = connectClient(url, 'sync room/ü')
    try {
      await waitFor(() => a.provider.synced && b.provider.synced, { message: 'both synced' })
      await synced(stock)
      a.text.insert(0, 'hello ')
      stock.text.insert(0, 'stock ')
      await waitFor(() => b.text.toString().length === 12 && a.text.toString() === b.text.toString() && stock.text.toString() === b.text.toString(), { message: 'three-way convergence' })
      a.provider.awareness.setLocalStateField('user', { name: 'A' })
      await waitFor(() => (b.provider.awareness.getStates().get(a.doc.clientID) as { user?: { name: string } } | undefined)?.user?.name === 'A', { message: 'awareness of A at B' })
      assert.equal(a.provider.wsconnected, true)
      assert.equal(a.provider.transport, 'websocket')
    } finally {
      stock.destroy()
    }
  })

  test('a thousand cursor moves at once reach the others as their last position, within the server\'s message rate', async () => {
    const a = open(url, 'drag')
    const b = open(url, 'drag')
    await waitFor(() => a.provider.synced && b.provider.synced, { message: 'both synced' })
    // A selection dragged fast: more changes than the 300 messages a socket may send at once.
    for (let i = 1; i <= 1000; i++) a.provider.awareness.setLocalStateField('cursor', i)
    await waitFor(() => (b.provider.awareness.getStates().get(a.doc.clientID) as { cursor?: number } | undefined)?.cursor === 1000,
      { message: 'the last position at B' })
    assert.deepEqual(a.closes, [], 'the server did not close A for its rate')
    assert.equal(a.provider.wsconnected, true)
  })

  test('backoff grows with jitter and is capped while the server cannot be reached', async () => {
    const port = await deadPort()
    const options = { backoff: { initialMs: 20, maxMs: 160 } }
    const a = open(`ws://127.0.0.1:${port}`, 'nowhere', { ...options, random: seeded(1) })
    const b = open(`ws://127.0.0.1:${port}`, 'nowhere', { ...options, random: seeded(2) })
    await waitFor(() => a.retries.length >= 8 && b.retries.length >= 8, { timeoutMs: 20_000, message: '8 retries each' })
    // Taken before disconnecting: an attempt in flight then ends with the provider's own close (1000).
    const failures = new Map([a, b].map((client) => [client, client.closes.slice()]))
    a.provider.disconnect()
    b.provider.disconnect()
    for (const client of [a, b]) {
      const delays = client.retries.slice(0, 8).map((r) => r.delayMs)
      assert.deepEqual(client.retries.slice(0, 8).map((r) => r.attempt), [1, 2, 3, 4, 5, 6, 7, 8])
      delays.forEach((delay, i) => {
        const ceiling = Math.min(160, 20 * 2 ** i)
        assert.ok(delay >= ceiling / 2 && delay <= ceiling, `retry ${i + 1}: ${delay} ms not in [${ceiling / 2}, ${ceiling}]`)
      })
      assert.ok(delays.slice(4).every((d) => d <= 160), `capped at 160 ms: ${delays}`)
      assert.ok(delays[3]! > delays[0]!, `grows: ${delays}`)
      const closes = failures.get(client)!
      assert.ok(closes.length >= 8 && closes.every((c) => c.code === 1006 && !c.opened), `each failure is a network close before open: ${JSON.stringify(closes.map((c) => [c.code, c.opened]))}`)
    }
    assert.notDeepEqual(a.retries.map((r) => r.delayMs), b.retries.map((r) => r.delayMs), 'two clients do not retry in lockstep')
  })

  test('a 44xx close stops reconnecting', async () => {
    const before = upgradesRefused
    const client = open(refusedUrl, 'private')
    const denied: string[] = []
    client.provider.on('permission-denied', ({ reason }) => denied.push(reason))
    const closed = await new Promise<{ code: number }>((resolve) => client.provider.once('closed', resolve))
    assert.equal(closed.code, 4403)
    assert.equal(client.provider.shouldConnect, false)
    assert.equal(client.closes.at(-1)?.final, true)
    assert.match(client.closes.at(-1)!.cause, /forbidden/)
    assert.deepEqual(denied, ['not your room'])
    // Proving that nothing happens takes waiting: 1.5 s is three times the first retry's longest delay.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal(client.retries.length, 0, 'no retry scheduled')
    assert.equal(upgradesRefused - before, 1, 'exactly one connection attempt')
    assert.equal(refused.connections, 0)
  })

  test('it resyncs after a server-side close (4000, then 1012 for the whole room), with edits made meanwhile', async () => {
    const room = 'resync-room'
    const a = open(url, room, { backoff: { initialMs: 400, maxMs: 400 } })
    const b = open(url, room)
    await waitFor(() => a.provider.synced && b.provider.synced, { message: 'both synced' })
    a.text.insert(0, 'one ')
    await waitFor(() => b.text.toString() === 'one ', { message: 'first edit' })
    const http = url.replace('ws', 'http')

    // A state at clock 0 (the empty one every Awareness starts with) is ignored by peers: set a field.
    a.provider.awareness.setLocalStateField('user', { name: 'A' })
    await waitFor(() => server.loadedRoom(room)?.awareness.getStates().has(a.doc.clientID), { message: 'server knows A' })
    const resyncs: number[] = []
    a.provider.on('resynced', ({ durationMs }) => resyncs.push(durationMs))
    const response = await fetch(`${http}/api/demo/${room}/close-me?client=${a.doc.clientID}`, { method: 'POST' })
    assert.equal(response.status, 200, await response.text())
    await waitFor(() => a.closes.some((c) => c.code === 4000), { message: 'A closed with 4000' })
    assert.equal(a.provider.synced, false)
    b.text.insert(b.text.length, 'two ')   // while A is away (it waits >= 200 ms before retrying)
    a.text.insert(a.text.length, 'three ')
    await waitFor(() => resyncs.length === 1, { message: 'A resynced' })
    await waitFor(() => a.text.toString() === b.text.toString() && a.text.length === 14, { message: `convergence after 4000: ${a.text} / ${b.text}` })
    assert.equal(b.closes.length, 0, 'B was not touched')

    const restart = await fetch(`${http}/api/demo/${room}/restart`, { method: 'POST' })
    assert.deepEqual(await restart.json(), { closed: 2, code: 1012 })
    await waitFor(() => a.closes.some((c) => c.code === 1012) && b.closes.some((c) => c.code === 1012), { message: 'both closed with 1012' })
    b.text.insert(0, 'zero ')
    await waitFor(() => a.provider.synced && b.provider.synced && a.text.toString() === b.text.toString() && a.text.length === 19, { message: 'convergence after 1012' })
    // "two" and "three" were inserted concurrently at the same place: Yjs orders them by client id.
    assert.deepEqual(a.text.toString().split(' ').filter(Boolean).sort(), ['one', 'three', 'two', 'zero'])
    assert.ok(a.text.toString().startsWith('zero one '))
    assert.equal(a.provider.lastClose?.cause, 'server restart (server restarting (demo))')
  })

  test('demo endpoints: unknown client and bad input are answered, and they are 404 without the flag', async () => {
    const http = url.replace('ws', 'http')
    const a = open(url, 'demo-room')
    await waitFor(() => a.provider.synced)
    assert.equal((await fetch(`${http}/api/demo/demo-room/close-me?client=12345`, { method: 'POST' })).status, 404)
    assert.equal((await fetch(`${http}/api/demo/demo-room/close-me?client=x`, { method: 'POST' })).status, 400)
    assert.equal((await fetch(`${http}/api/demo/demo-room/restart`)).status, 405)
    assert.deepEqual(await (await fetch(`${http}/api/demo`)).json(), { enabled: true })
    const plainHttp = refusedUrl.replace('ws', 'http')
    assert.deepEqual(await (await fetch(`${plainHttp}/api/demo`)).json(), { enabled: false })
    assert.equal((await fetch(`${plainHttp}/api/demo/demo-room/restart`, { method: 'POST' })).status, 404)
    assert.equal(a.closes.length, 0)
  })

  test('over fallbackChannel it syncs by long-polling while WebSocket fails, reports the kind, and returns to WebSocket once it works', async () => {
    let primaryWorks = false
    const port = await deadPort()
    const primary: ChannelFactory = (target, events) => primaryWorks ? ws(target, events) : ws({ ...target, serverUrl: `ws://127.0.0.1:${port}` }, events)
    const kinds: string[] = []
    const client = open(url, 'fallback-room', { channel: fallbackChannel(primary, pollChannel(), { retryPrimaryMs: 300 }), backoff: { initialMs: 20, maxMs: 40 } })
    client.provider.on('transport', ({ kind }) => kinds.push(kind))
    const other = open(url, 'fallback-room')
    await waitFor(() => client.provider.synced, { message: 'synced over the fallback' })
    assert.equal(client.provider.transport, 'poll')
    assert.equal(client.closes.length, 0, 'the failed WebSocket is the channel\'s business: the provider saw no close')
    other.text.insert(0, 'polled ')
    await waitFor(() => client.text.toString() === 'polled ', { message: 'syncing over polling' })
    primaryWorks = true
    await waitFor(() => client.provider.synced && client.provider.transport === 'websocket', { timeoutMs: 10_000, message: 'back on websocket' })
    assert.equal(client.closes.at(-1)?.kind, 'poll')
    assert.ok(kinds.includes('poll') && kinds.at(-1) === 'websocket', `transport events: ${kinds.join(', ')}`)
    other.text.insert(0, 'after the switch ')
    await waitFor(() => client.text.toString() === 'after the switch polled ', { message: 'syncing on websocket' })
  })

  test('the removed built-in fallback options are a TypeError pointing to fallbackChannel', () => {
    const doc = new Y.Doc()
    try {
      for (const option of [{ fallback: ws }, { fallbackAfterFailures: 2 }, { returnProbeMs: 1000 }]) {
        assert.throws(() => new RelayProvider(url, 'x', doc, { channel: ws, connect: false, ...option } as ProviderOptions), /fallbackChannel/)
      }
    } finally {
      doc.destroy()
    }
  })
})
