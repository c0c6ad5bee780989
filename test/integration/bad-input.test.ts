import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as protocol from '../../server/protocol.js'
import { ASK_INTERVAL_MS } from '../../server/room-writes.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { openRaw } from '../helpers/raw-socket.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { rng } from '../helpers/tokens.js'
import { encodeAwarenessStates } from '../helpers/awareness.js'
import { dependentUpdates, forgedItem } from '../helpers/updates.js'
import { waitFor } from '../helpers/wait.js'

const frame = (...parts: Array<(e: encoding.Encoder) => void>): Uint8Array => {
  const e = encoding.createEncoder()
  for (const p of parts) p(e)
  return encoding.toUint8Array(e)
}

describe('bad input', () => {
  let server: TestServer
  const storage = new MemoryStorage()
  const clients: Client[] = []
  let a: Client
  let b: Client
  let round = 0

  before(async () => {
    // The rate limit (tested in limits.test.ts) would close the 10,000-frame socket below with 4529.
    server = await startServer({ storage, maxMessageBytes: 16 * 1024 * 1024, messagesPerSecond: 1_000_000, messageBurst: 1_000_000 })
    a = connectClient(server.url, 'victim')
    b = connectClient(server.url, 'victim')
    clients.push(a, b)
    await Promise.all([synced(a), synced(b)])
  })
  after(async () => {
    for (const c of clients) c.destroy()
    await server.close()
  })

  /** After each attack: the server answers health checks and the good peers still sync both ways. */
  const stillHealthy = async (): Promise<void> => {
    assert.equal((await fetch(`${server.http}/healthz`)).status, 200)
    round++
    a.text.insert(a.text.length, `a${round};`)
    b.text.insert(b.text.length, `b${round};`)
    const text = await converged([a, b])
    assert.ok(text.includes(`a${round};`) && text.includes(`b${round};`))
  }

  const attack = async (name: string, frames: Uint8Array[], expectedCode: number): Promise<void> => {
    const raw = await openRaw(server.url, 'victim')
    for (const f of frames) raw.send(f)
    const { code, reason } = await raw.closed
    assert.equal(code, expectedCode, `${name}: closed with ${code} "${reason}"`)
    await stillHealthy()
  }

  it('closes a socket that sends random bytes with 4400', async () => {
    const random = rng(1)
    for (let i = 0; i < 20; i++) {
      const bytes = Uint8Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256))
      // A random frame can happen to be valid (e.g. a query-awareness); those are not what this test is about.
      let valid = true
      try { protocol.decodeMessage(bytes) } catch { valid = false }
      if (valid) continue
      const raw = await openRaw(server.url, 'victim')
      raw.send(bytes)
      const { code } = await raw.closed
      assert.ok(code === 4400 || code === 4422, `random frame ${Buffer.from(bytes).toString('hex')} closed with ${code}`)
    }
    await stillHealthy()
  })

  it('closes a socket that sends a truncated varint with 4400', async () => {
    await attack('truncated varint', [Uint8Array.of(0x80)], 4400)
    await attack('truncated length', [Uint8Array.of(0, 2, 0xff)], 4400)
  })

  it('closes a socket that sends an unknown message type with 4400', async () => {
    await attack('unknown type', [Uint8Array.of(42, 1, 2, 3)], 4400)
    await attack('unknown sync type', [Uint8Array.of(0, 9, 0)], 4400)
  })

  it('closes a socket that sends a text frame with 4400', async () => {
    const raw = await openRaw(server.url, 'victim')
    raw.ws.send('hello')
    assert.equal((await raw.closed).code, 4400)
    await stillHealthy()
  })

  it('closes a socket that sends an update Yjs cannot decode with 4422, and stores nothing of it', async () => {
    await server.server.loadedRoom('victim')!.flushed()
    const before = (await storage.load('victim')).updates.length
    const garbage = frame((e) => { encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 2); encoding.writeVarUint8Array(e, Uint8Array.of(5, 200, 3, 7, 7, 7)) })
    const raw = await openRaw(server.url, 'victim')
    raw.send(garbage)
    assert.equal((await raw.closed).code, 4422)
    await server.server.loadedRoom('victim')!.flushed()
    assert.equal((await storage.load('victim')).updates.length, before, 'nothing was stored')
    await stillHealthy()
  })

  it('asks a socket whose update depends on content the room lacks for that content, stores nothing of it until it comes, and keeps the socket', async () => {
    const watcher = connectClient(server.url, 'incomplete')
    clients.push(watcher)
    await synced(watcher)
    const { second: dependent, both } = dependentUpdates('a', 'b')
    const raw = await openRaw(server.url, 'incomplete')
    const stepOnes = (): number => raw.frames.filter((f) => protocol.decodeMessage(f).type === 'sync-step1').length
    await waitFor(() => stepOnes() === 1, { message: 'the step 1 every joiner gets' })
    raw.send(protocol.encodeSyncUpdate(dependent))
    await waitFor(() => stepOnes() === 2, { message: 'a second step 1: the server asking for what it lacks' })
    const room = server.server.loadedRoom('incomplete')!
    await room.flushed()
    assert.equal((await storage.load('incomplete')).updates.length, 0, 'nothing was stored')
    assert.equal(room.doc.getText('text').toString(), '')
    assert.equal(room.doc.store.pendingStructs, null, 'nothing waits in the document either')
    // The client answers with everything, as a stock client answers a step 1.
    raw.send(protocol.encodeSyncStep2(both))
    await waitFor(() => watcher.text.toString() === 'ab', { message: 'the content reaching the watcher' })
    assert.equal(raw.ws.readyState, raw.ws.OPEN)
    raw.ws.close()
    const late = connectClient(server.url, 'incomplete')
    clients.push(late)
    await synced(late)
    assert.equal(late.text.toString(), 'ab')
    await stillHealthy()
  })

  it('asks a socket again, once the interval has passed, for content an update sent meanwhile depends on', async () => {
    const { second: dependent, both } = dependentUpdates('c', 'd')
    const raw = await openRaw(server.url, 'incomplete-twice')
    const stepOnes = (): number => raw.frames.filter((f) => protocol.decodeMessage(f).type === 'sync-step1').length
    await waitFor(() => stepOnes() === 1, { message: 'the step 1 every joiner gets' })
    raw.send(protocol.encodeSyncUpdate(dependent))
    await waitFor(() => stepOnes() === 2, { message: 'the server asking for what it lacks' })
    // Sent right after the ask: it may be the client's last update, so the server must ask again later
    // rather than drop it for good (before, it asked at most every 10 s and only when another came).
    raw.send(protocol.encodeSyncUpdate(dependent))
    await waitFor(() => stepOnes() === 3, { timeoutMs: 4 * ASK_INTERVAL_MS, message: 'the server asking again once the interval has passed' })
    raw.send(protocol.encodeSyncStep2(both))
    await waitFor(() => server.server.loadedRoom('incomplete-twice')?.doc.getText('text').toString() === 'cd', { message: 'the content stored' })
    raw.ws.close()
  })

  it('closes a socket that sends an item whose right origin is not right of its origin with 4422', async () => {
    // Text content the room holds: client a's first character, named as both origins of a new item.
    const origin = Y.createID(a.doc.clientID, 0)
    await attack('contradicting origins', [protocol.encodeSyncUpdate(forgedItem(77, origin, origin, 'X'))], 4422)
    assert.ok(!a.text.toString().includes('X'))
  })

  it('closes a socket that sends an unreadable state vector or awareness update with 4400', async () => {
    await attack('bad state vector', [frame((e) => { encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 0); encoding.writeVarUint8Array(e, Uint8Array.of(3, 0x80)) })], 4400)
    await attack('bad awareness', [frame((e) => { encoding.writeVarUint(e, 1); encoding.writeVarUint8Array(e, Uint8Array.of(1, 5, 1, 3, 0x7b, 0x7b, 0x7b)) })], 4400)
  })

  it('closes a socket whose awareness brings more than 8 states or a state over 64 KiB with 4400; the room holds none of them', async () => {
    const states = (first: number, count: number, state = '{"user":"x"}'): Uint8Array =>
      protocol.encodeAwareness(encodeAwarenessStates(Array.from({ length: count }, (_, i) => [first + i, 1, state] as const)))
    const room = server.server.loadedRoom('victim')!
    const held = room.awareness.states.size
    await attack('a flood of states in one message', [states(500_000, 10_000)], 4400)
    await attack('nine states, one message at a time', Array.from({ length: 9 }, (_, i) => states(600_000 + i, 1)), 4400)
    await attack('a 70 KB state', [states(700_000, 1, JSON.stringify({ blob: 'x'.repeat(70 * 1024) }))], 4400)
    assert.equal(room.awareness.states.size, held + 0, 'what the closed sockets announced went with them')
    // Eight from one socket, a state of 64 KiB, and the same again from another socket, are fine.
    const eight = await openRaw(server.url, 'victim')
    eight.send(states(800_000, 7))
    eight.send(states(800_007, 1, JSON.stringify({ blob: 'x'.repeat(64 * 1024 - 12) })))
    const other = await openRaw(server.url, 'victim')
    other.send(states(900_000, 8))
    await waitFor(() => room.awareness.states.size === held + 16, { message: 'sixteen states held' })
    eight.ws.close()
    other.ws.close()
    await waitFor(() => room.awareness.states.size === held, { message: 'their states went with their sockets' })
    await stillHealthy()
  })

  it('closes a socket that sends a 20 MB frame with 1009', async () => {
    await attack('20 MB frame', [protocol.encodeSyncUpdate(randomBytes(20 * 1024 * 1024))], 1009)
  })

  it('handles 10,000 tiny frames from one socket in order and stays responsive', async () => {
    const raw = await openRaw(server.url, 'victim')
    await waitFor(() => raw.frames.length >= 1, { message: 'sync step 1' })
    const query = protocol.encodeQueryAwareness()
    for (let i = 0; i < 10_000; i++) raw.send(query)
    await waitFor(() => raw.frames.length >= 10_001, { timeoutMs: 30_000, message: '10,000 answers' })
    raw.ws.close()
    await stillHealthy()
  })

  it('still loads the stored document after all of it', async () => {
    const text = a.text.toString()
    const fresh = new MemoryStorage()
    await fresh.append((await storage.load('victim')).updates.map((update) => ({ room: 'victim', update })))
    const second = await startServer({ storage: fresh })
    const c = connectClient(second.url, 'victim')
    try {
      await synced(c)
      assert.equal(c.text.toString(), text)
    } finally {
      c.destroy()
      await second.close()
    }
  })
})
