import assert from 'node:assert/strict'
import { after, afterEach, describe, it } from 'node:test'
import * as decoding from 'lib0/decoding'
import { NULL_STATE, readAwarenessEntries, type AwarenessEntry } from '../../server/awareness-codec.js'
import { AWARENESS_INTERVAL_MS } from '../../server/awareness-coalescing.js'
import * as protocol from '../../server/protocol.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { pollChannel } from '../../web/poll-channel.js'
import { connectChannelClient, type ChannelClient } from '../helpers/channel-client.js'
import { encodeAwarenessStates } from '../helpers/awareness.js'
import { connectClient, synced, type Client } from '../helpers/clients.js'
import { MemoryBusHub } from '../helpers/memory-bus.js'
import { openRaw } from '../helpers/raw-socket.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

/**
 * Stock y-websocket clients send back every awareness change they receive. In a busy room where everyone
 * moves a cursor, that echo is most of what each client sends: it must not count against the client.
 */

const CURSOR_HZ = 5
/** The most awareness frames a room sends a socket a second (and bus messages it publishes). */
const FRAMES_A_SECOND = 1000 / AWARENESS_INTERVAL_MS

/** Moves every client's cursor `hz` times a second, spread over the period; returns a stop function. */
const moveCursors = (clients: readonly Client[], hz: number): (() => void) => {
  const timers = clients.map((client, i) => {
    let n = 0
    const move = (): void => { client.provider.awareness.setLocalStateField('cursor', { anchor: n++, head: n }) }
    const start = setTimeout(() => {
      move()
      timers[i] = setInterval(move, 1000 / hz)
    }, (i * 1000) / hz / clients.length)
    return start
  })
  return () => { for (const timer of timers) { clearTimeout(timer); clearInterval(timer) } }
}

/** The entries of an awareness frame; none for any other frame. */
const awarenessEntries = (frame: Uint8Array): AwarenessEntry[] => {
  if (frame[0] !== protocol.MESSAGE_AWARENESS) return []
  const decoder = decoding.createDecoder(frame)
  decoding.readVarUint(decoder)
  return readAwarenessEntries(decoding.readVarUint8Array(decoder))
}

/** Every close a client's connection saw, with its code. */
const recordCloses = (clients: readonly Client[]): Array<{ client: number, code: number | null }> => {
  const closes: Array<{ client: number, code: number | null }> = []
  clients.forEach((client, i) => client.provider.on('connection-close', (event) => { closes.push({ client: i, code: event?.code ?? null }) }))
  return closes
}

/** True when every client holds every other's latest cursor. */
const everyoneSeesEveryone = (clients: readonly Client[]): boolean => clients.every((viewer) => clients.every((other) => {
  const latest = other.provider.awareness.getLocalState()?.cursor as { anchor: number } | undefined
  const seen = viewer.provider.awareness.getStates().get(other.doc.clientID)?.cursor as { anchor: number } | undefined
  return latest !== undefined && seen?.anchor === latest.anchor
}))

const join = async (url: string, room: string, count: number, into: Client[]): Promise<Client[]> => {
  const joined = Array.from({ length: count }, () => connectClient(url, room))
  into.push(...joined)
  await Promise.all(joined.map((client) => synced(client, 20_000)))
  return joined
}

describe('a busy room of stock clients moving their cursors', () => {
  const servers: TestServer[] = []
  const clients: Client[] = []
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy()
    await Promise.all(servers.splice(0).map((server) => server.close()))
  })
  after(async () => { for (const client of clients.splice(0)) client.destroy() })

  it('keeps 30 clients at 5 Hz connected for 20 s on the default configuration, each seeing the others', async () => {
    const server = await startServer()
    servers.push(server)
    const room = await join(server.url, 'busy', 30, clients)
    const closes = recordCloses(room)
    const stop = moveCursors(room, CURSOR_HZ)
    const deadline = Date.now() + 20_000
    try {
      await waitFor(() => closes.length > 0 || Date.now() > deadline, { timeoutMs: 25_000, intervalMs: 100, message: '20 s of cursor moves' })
    } finally {
      stop()
    }
    assert.deepEqual(closes, [], 'no client was closed')
    await waitFor(() => everyoneSeesEveryone(room), { timeoutMs: 5000, message: "every client seeing every other's latest cursor" })
  })

  it('keeps the same across two instances sharing a bus', async () => {
    const hub = new MemoryBusHub()
    const storage = new MemoryStorage()
    // Awareness messages each instance publishes, counted while the cursors move.
    const published = [0, 0]
    let counting = false
    const buses = [0, 1].map((i) => {
      const bus = hub.connect()
      const publish = bus.publish.bind(bus)
      bus.publish = async (name, message) => {
        if (counting && message.kind === 'awareness') published[i]!++
        return publish(name, message)
      }
      return bus
    })
    const a = await startServer({ storage, bus: buses[0] })
    const b = await startServer({ storage, bus: buses[1] })
    servers.push(a, b)
    const room = [...await join(a.url, 'busy-cluster', 15, clients), ...await join(b.url, 'busy-cluster', 15, clients)]
    const closes = recordCloses(room)
    const stop = moveCursors(room, CURSOR_HZ)
    counting = true
    const started = Date.now()
    try {
      await waitFor(() => closes.length > 0 || Date.now() - started > 10_000, { timeoutMs: 15_000, intervalMs: 100, message: '10 s of cursor moves' })
    } finally {
      stop()
      counting = false
    }
    const seconds = (Date.now() - started) / 1000
    assert.deepEqual(closes, [], 'no client was closed')
    // 15 clients at 5 Hz are 75 changes a second per instance; merged, one bus message per interval.
    for (const count of published) assert.ok(count <= seconds * (FRAMES_A_SECOND + 1), `${count} awareness messages published in ${seconds} s`)
    await waitFor(() => everyoneSeesEveryone(room), { timeoutMs: 5000, message: "every client seeing every other's latest cursor" })
  })

  it('keeps the same with long-polling clients in the room, none refused', async () => {
    const server = await startServer()
    servers.push(server)
    const room = await join(server.url, 'busy-poll', 20, clients)
    let refused = 0
    const counting = async (input: string, init: RequestInit): Promise<Response> => {
      const response = await fetch(input, init)
      if (response.status === 429) refused++
      return response
    }
    // Six, not more: they all come from 127.0.0.1, and a poll answered at every awareness frame (20 a
    // second) plus the sends count against one address's 200 requests a second.
    const polling: ChannelClient[] = Array.from({ length: 6 }, () => connectChannelClient(pollChannel({ fetch: counting }), { serverUrl: server.url, room: 'busy-poll' }))
    try {
      await waitFor(() => polling.every((client) => client.synced), { timeoutMs: 20_000, message: 'the polling clients synced' })
      const closes = recordCloses(room)
      const stop = moveCursors(room, CURSOR_HZ)
      const timers = polling.map((client, i) => {
        let n = 0
        return setInterval(() => client.awareness.setLocalStateField('cursor', { anchor: ++n, head: n, poller: i }), 1000 / CURSOR_HZ)
      })
      const deadline = Date.now() + 10_000
      try {
        await waitFor(() => closes.length > 0 || refused > 0 || Date.now() > deadline, { timeoutMs: 15_000, intervalMs: 100, message: '10 s of cursor moves' })
      } finally {
        stop()
        for (const timer of timers) clearInterval(timer)
      }
      assert.deepEqual(closes, [], 'no stock client was closed')
      assert.equal(refused, 0, 'no long-poll request was refused')
      assert.deepEqual(polling.flatMap((client) => client.closes), [], 'no polling channel closed')
      const latest = (client: ChannelClient): number | undefined => (client.awareness.getLocalState()?.cursor as { anchor: number } | undefined)?.anchor
      await waitFor(() => everyoneSeesEveryone(room) && polling.every((viewer) =>
        room.every((other) => (viewer.awareness.getStates().get(other.doc.clientID)?.cursor as { anchor: number } | undefined)?.anchor ===
          (other.provider.awareness.getLocalState()?.cursor as { anchor: number }).anchor) &&
        polling.every((other) => (viewer.awareness.getStates().get(other.doc.clientID)?.cursor as { anchor: number } | undefined)?.anchor === latest(other))) &&
        room.every((viewer) => polling.every((other) => (viewer.provider.awareness.getStates().get(other.doc.clientID)?.cursor as { anchor: number } | undefined)?.anchor === latest(other))),
      { timeoutMs: 5000, message: "every client, polling or not, seeing every other's latest cursor" })
    } finally {
      for (const client of polling) client.destroy()
    }
  })

  it('still closes a socket that changes its own state too often', async () => {
    const server = await startServer()
    servers.push(server)
    const raw = await openRaw(server.url, 'flood-own')
    const client = 4242
    for (let clock = 1; clock <= 2000; clock++) {
      raw.send(protocol.encodeAwareness(encodeAwarenessStates([[client, clock, JSON.stringify({ cursor: clock })]])))
    }
    const closed = await raw.closed
    assert.ok(closed.code === 4429 || closed.code === 4529, `closed for its rate, got ${closed.code}`)
  })

  it('still closes a socket that replays known states more often than it was sent any', async () => {
    const server = await startServer()
    servers.push(server)
    const [other] = await join(server.url, 'flood-echo', 1, clients)
    other!.provider.awareness.setLocalStateField('cursor', 1)
    const raw = await openRaw(server.url, 'flood-echo')
    const state = await waitFor(() => {
      const { states, meta } = server.server.loadedRoom('flood-echo')!.awareness
      const held = states.get(other!.doc.clientID)
      return held?.cursor === 1 ? { clock: meta.get(other!.doc.clientID)!.clock, json: JSON.stringify(held) } : null
    }, { message: "the room holding the other client's cursor" })
    const echo = protocol.encodeAwareness(encodeAwarenessStates([[other!.doc.clientID, state.clock, state.json]]))
    for (let i = 0; i < 2000; i++) raw.send(echo)
    const closed = await raw.closed
    assert.ok(closed.code === 4429 || closed.code === 4529, `closed for its rate, got ${closed.code}`)
  })

  it('tells the others of many clients announcing themselves at once in merged frames, not one each', async () => {
    const server = await startServer()
    servers.push(server)
    const observer = await openRaw(server.url, 'returning')
    const returning = await Promise.all(Array.from({ length: 30 }, () => openRaw(server.url, 'returning')))
    await waitFor(() => returning.every((raw) => raw.frames.length > 0), { message: 'every socket joined' })
    const counted = observer.frames.length
    // The room meets each client first now, as after a restart: it raises each state's clock
    // (awareness-revival.ts) and tells each sender at once, as a removal at the raised clock.
    returning.forEach((raw, i) => raw.send(protocol.encodeAwareness(encodeAwarenessStates([[1000 + i, 1, '{"cursor":1}']]))))
    for (const [i, raw] of returning.entries()) {
      await waitFor(() => raw.frames.some((frame) => awarenessEntries(frame).some(([client, , state]) => client === 1000 + i && state === NULL_STATE)), {
        message: `socket ${i} told of its raised clock`,
      })
    }
    const seen = (): Set<number> => new Set(observer.frames.slice(counted).flatMap((frame) => awarenessEntries(frame).map(([client]) => client)))
    await waitFor(() => seen().size === 30, { message: 'the observer seeing all 30 states' })
    const frames = observer.frames.slice(counted).filter((frame) => frame[0] === protocol.MESSAGE_AWARENESS).length
    assert.ok(frames <= 10, `${frames} awareness frames for 30 clients announcing themselves`)
    for (const raw of [observer, ...returning]) raw.ws.close()
  })

  it('sends each socket at most one awareness frame per interval, however many clients move', async () => {
    const server = await startServer()
    servers.push(server)
    const room = await join(server.url, 'frame-rate', 20, clients)
    const raw = await openRaw(server.url, 'frame-rate')
    const stop = moveCursors(room, 10)
    const counted = raw.frames.length
    const started = Date.now()
    await waitFor(() => Date.now() - started >= 3000, { timeoutMs: 5000, message: '3 s of cursor moves' })
    stop()
    const awarenessFrames = raw.frames.slice(counted).filter((frame) => frame[0] === protocol.MESSAGE_AWARENESS).length
    // 20 clients at 10 Hz are 200 changes a second: one frame per change would be 600 frames.
    assert.ok(awarenessFrames <= 3 * (FRAMES_A_SECOND + 2), `${awarenessFrames} awareness frames in 3 s`)
    assert.ok(awarenessFrames >= 3 * 10, `${awarenessFrames} awareness frames in 3 s: changes still flow`)
    raw.ws.close()
  })
})
