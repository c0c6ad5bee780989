/**
 * Issue 24, findings 2 and 3, over long-polling with a read token: a send's answer is bounded however
 * many step 1 and query-awareness frames its body holds, and the awareness limit holds per request (and
 * per connection), with a bounded number of states per room.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as Y from 'yjs'
import * as protocol from '../../server/protocol.js'
import { decodeFrames, encodeFrames } from '../../server/transport/long-poll-wire.js'
import { encodeAwarenessStates } from '../helpers/awareness.js'
import { MiB, watchMemory } from '../helpers/memory.js'
import { openRaw } from '../helpers/raw-socket.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

const ROOM_STATES = 24

const send = async (server: TestServer, room: string, frames: readonly Uint8Array[], mode = 'reader'): Promise<{ status: number, frames: Uint8Array[], bytes: number }> => {
  const answer = await fetch(`${server.http}/poll/${room}?op=send&token=${mode}`, { method: 'POST', body: encodeFrames(frames) })
  const body = new Uint8Array(await answer.arrayBuffer())
  return { status: answer.status, frames: answer.status === 200 ? decodeFrames(body) : [], bytes: body.length }
}

const states = (first: number, count: number, clock = 1): Uint8Array =>
  protocol.encodeAwareness(encodeAwarenessStates(Array.from({ length: count }, (_, i) => [first + i, clock, JSON.stringify({ user: { name: `n${first + i}` } })] as const)))

const typeOf = (frame: Uint8Array): string => frame[0] === 0 ? `sync-${frame[1]}` : `type-${frame[0]}`

describe('long-poll sends with many frames (issue 24, findings 2 and 3)', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({
      maxAwarenessStatesPerRoom: ROOM_STATES,
      authorize: (request) => ({ mode: request.url?.includes('token=reader') === true ? 'read' : 'write' }),
    })
  })
  after(() => server.close())

  it('answers a body of many sync step 1 and query-awareness frames with one step 2 and one awareness frame', async () => {
    // A document of some 256 KiB, and room awareness to answer queries with.
    await server.server.transact('amplify', (doc) => doc.getText('text').insert(0, 'x'.repeat(256 * 1024)))
    await send(server, 'amplify', [states(1000, 4)])
    const step1 = protocol.encodeSyncStep1(Y.encodeStateVector(new Y.Doc()))
    const memory = watchMemory()
    const answer = await send(server, 'amplify', [...Array.from({ length: 200 }, () => step1), ...Array.from({ length: 200 }, () => protocol.encodeQueryAwareness())])
    const growth = memory.stop()
    assert.equal(answer.status, 200)
    const kinds = answer.frames.map(typeOf)
    assert.equal(kinds.filter((kind) => kind === 'sync-1').length, 1, `one step 2, got ${kinds.join(',').slice(0, 200)}`)
    assert.equal(kinds.filter((kind) => kind === 'type-1').length, 1, 'one awareness answer')
    assert.ok(answer.bytes < 300 * 1024, `the answer is one document, not one per frame: ${answer.bytes} bytes`)
    assert.ok(growth < 24 * MiB, `the server's memory grew ${(growth / MiB).toFixed(1)} MiB`)
  })

  // A guard: a body's updates are kept as views into it rather than decoded (114 -> 74 MiB here), and
  // past 100 they are merged in runs of 100 before the room admits them (see long-poll-send.ts).
  it('stores a write client\'s body of 40,000 tiny updates within a memory bound', async () => {
    const doc = new Y.Doc()
    const updates: Uint8Array[] = []
    doc.on('update', (update: Uint8Array) => updates.push(protocol.encodeSyncUpdate(update)))
    for (let i = 0; i < 40_000; i++) doc.getText('text').insert(i, 'x')
    const memory = watchMemory()
    const answer = await send(server, 'tiny', updates, 'writer')
    const growth = memory.stop()
    assert.equal(answer.status, 200)
    assert.equal(server.server.loadedRoom('tiny')?.doc.getText('text').length, 40_000)
    assert.ok(growth < 160 * MiB, `a body of ${updates.length} updates (${(updates.reduce((n, u) => n + u.length, 0) / MiB).toFixed(1)} MiB) grew the server's memory ${(growth / MiB).toFixed(1)} MiB`)
  })

  it('counts the awareness limit per request, across its messages, and sends the room one awareness frame', async () => {
    const watcher = await openRaw(server.url, 'per-request')
    try {
      await waitFor(() => watcher.frames.length > 0, { message: 'the watcher joined' })
      const seen = watcher.frames.length
      // Ten messages of two new states each: 20 states in one request, over the limit of 8.
      const refused = await send(server, 'per-request', Array.from({ length: 10 }, (_, i) => states(2000 + 2 * i, 2)))
      assert.equal(refused.status, 400)
      const room = server.server.loadedRoom('per-request')!
      assert.equal(room.awareness.states.size, 0, 'nothing of the request applied')
      // A hundred renewals of one state in one request reach the room's sockets as one frame.
      const renewals = await send(server, 'per-request', Array.from({ length: 100 }, (_, i) => states(3000, 1, i + 1)))
      assert.equal(renewals.status, 200)
      await waitFor(() => room.awareness.states.has(3000), { message: 'the state applied' })
      assert.ok((room.awareness.meta.get(3000)?.clock ?? 0) >= 100, 'the last renewal applied')
      await waitFor(() => watcher.frames.length > seen, { message: 'the watcher hearing of the state' })
      assert.equal(watcher.frames.length - seen, 1, 'one awareness frame to each socket per request')
    } finally {
      watcher.ws.terminate()
    }
  })

  it('counts the awareness limit per connection, across messages', async () => {
    const socket = await openRaw(server.url, 'per-connection')
    socket.send(states(4000, 5))
    socket.send(states(4005, 5))
    const { code } = await socket.closed
    assert.equal(code, 4400)
    const room = server.server.loadedRoom('per-connection')
    assert.ok((room?.awareness.states.size ?? 0) <= 5, 'the second message did not apply')
  })

  it('holds at most the configured number of awareness states in a room', async () => {
    const answers: number[] = []
    for (let i = 0; i < 6; i++) answers.push((await send(server, 'full', [states(5000 + 8 * i, 8)])).status)
    const room = server.server.loadedRoom('full')
    assert.ok((room?.awareness.states.size ?? 0) <= ROOM_STATES, `the room holds ${room?.awareness.states.size} states`)
    assert.deepEqual(answers.slice(0, 3), [200, 200, 200])
    assert.ok(answers.slice(3).every((status) => status === 503), `past the room's limit, 503: ${answers.join(',')}`)
    // Renewing a state the room holds still works when it is full.
    assert.equal((await send(server, 'full', [states(5000, 1, 2)])).status, 200)
  })
})
