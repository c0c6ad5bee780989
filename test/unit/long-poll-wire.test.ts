import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import {
  awarenessClocks, awarenessToSend, clientLacks, decodeFrames, decodePollRequest, encodeFrames, encodePollRequest,
  MAX_POLL_AWARENESS_ENTRIES, PollWireError,
} from '../../server/transport/long-poll-wire.js'

const snapshotOf = (doc: Y.Doc): Y.Snapshot => Y.decodeSnapshot(Y.encodeSnapshot(Y.snapshot(doc)))

const twin = (doc: Y.Doc): Y.Doc => {
  const copy = new Y.Doc()
  Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc))
  return copy
}

describe('long-poll wire format', () => {
  it('round-trips a list of frames, the empty list included', () => {
    const frames = [new Uint8Array([0, 0, 1, 5]), new Uint8Array(300).fill(7), new Uint8Array([3])]
    assert.deepEqual(decodeFrames(encodeFrames(frames)), frames)
    assert.deepEqual(decodeFrames(new Uint8Array(0)), [])
  })

  it('refuses truncated and empty frames with a message', () => {
    const body = encodeFrames([new Uint8Array(10)])
    assert.throws(() => decodeFrames(body.subarray(0, 5)), (e: unknown) => e instanceof PollWireError && /says 10 bytes, 4 left/.test(e.message))
    assert.throws(() => decodeFrames(new Uint8Array([0])), /frame 0 is empty/)
    assert.throws(() => decodeFrames(new Uint8Array([0xff])), /malformed varint/)
  })

  it('round-trips a poll request', () => {
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'hello')
    doc.getText('t').delete(1, 2)
    const clocks = new Map([[1, { clock: 3, hasState: true }], [99999999, { clock: 0, hasState: false }]])
    const decoded = decodePollRequest(encodePollRequest(Y.encodeSnapshot(Y.snapshot(doc)), clocks))
    assert.ok(Y.equalSnapshots(decoded.snapshot, Y.snapshot(doc)))
    assert.deepEqual([...decoded.clocks], [...clocks])
  })

  it('refuses a poll request with a bad state vector, a truncated list or trailing bytes', () => {
    const snapshot = Y.encodeSnapshot(Y.snapshot(new Y.Doc()))
    const good = encodePollRequest(snapshot, new Map([[1, { clock: 1, hasState: true }]]))
    assert.throws(() => decodePollRequest(new Uint8Array([3, 0xff, 0xff, 0xff, 0])), /bad state vector/)
    assert.throws(() => decodePollRequest(good.subarray(0, good.length - 1)), /truncated body/)
    assert.throws(() => decodePollRequest(new Uint8Array([...good, 0])), /unexpected bytes/)
    assert.throws(() => decodePollRequest(encodePollRequest(snapshot, new Map([[1, { clock: 1, hasState: true }]])).map((b, i, a) => i === a.length - 1 ? 2 : b)), /flag must be 0 or 1/)
  })

  it('refuses a poll request with more awareness entries than a client sends, before reading them', () => {
    const snapshot = Y.encodeSnapshot(Y.snapshot(new Y.Doc()))
    const entries = (count: number): Map<number, { clock: number, hasState: boolean }> =>
      new Map(Array.from({ length: count }, (_, i) => [i, { clock: 1, hasState: false }]))
    assert.equal(decodePollRequest(encodePollRequest(snapshot, entries(MAX_POLL_AWARENESS_ENTRIES))).clocks.size, MAX_POLL_AWARENESS_ENTRIES)
    assert.throws(() => decodePollRequest(encodePollRequest(snapshot, entries(MAX_POLL_AWARENESS_ENTRIES + 1))),
      (e: unknown) => e instanceof PollWireError && /20001 awareness entries; a poll may carry at most 20000/.test(e.message))
  })

  it('sends at most the entries a poll may carry, every client with a state among them', () => {
    const meta = new Map<number, { clock: number }>()
    const states = new Map<number, unknown>()
    for (let id = 0; id < MAX_POLL_AWARENESS_ENTRIES + 500; id++) meta.set(id, { clock: 2 })
    // States of clients met last, which a plain cut would leave out.
    for (let id = MAX_POLL_AWARENESS_ENTRIES; id < MAX_POLL_AWARENESS_ENTRIES + 500; id++) states.set(id, {})
    const clocks = awarenessClocks({ meta, states })
    assert.equal(clocks.size, MAX_POLL_AWARENESS_ENTRIES)
    for (const id of states.keys()) assert.deepEqual(clocks.get(id), { clock: 2, hasState: true })
  })

  it('sees a missing deletion although the state vectors are equal', () => {
    const server = new Y.Doc()
    server.getText('t').insert(0, 'hello world')
    const client = twin(server)
    assert.equal(clientLacks(snapshotOf(server), snapshotOf(client)), false)
    server.getText('t').delete(0, 6)
    assert.deepEqual(Y.encodeStateVector(server), Y.encodeStateVector(client))
    assert.equal(clientLacks(snapshotOf(server), snapshotOf(client)), true)
    Y.applyUpdate(client, Y.encodeStateAsUpdate(server, Y.encodeStateVector(client)))
    assert.equal(clientLacks(snapshotOf(server), snapshotOf(client)), false)
  })

  it('sees nothing missing when the client is ahead, in inserts or in deletions', () => {
    const server = new Y.Doc()
    server.getText('t').insert(0, 'abcdef')
    const client = twin(server)
    client.getText('t').delete(1, 3)
    client.getText('t').insert(0, 'new')
    assert.equal(clientLacks(snapshotOf(server), snapshotOf(client)), false)
    assert.equal(clientLacks(snapshotOf(client), snapshotOf(server)), true)
  })

  it('finds deletions covered by several adjacent ranges, and not by a partial one', () => {
    const server = new Y.Doc()
    const text = server.getText('t')
    text.insert(0, 'abcdefghij')
    const client = twin(server)
    client.getText('t').delete(0, 3)
    client.getText('t').delete(0, 3)
    text.delete(0, 6)
    assert.equal(clientLacks(snapshotOf(server), snapshotOf(client)), false)
    text.delete(0, 1)
    assert.equal(clientLacks(snapshotOf(server), snapshotOf(client)), true)
  })

  it('sends each awareness change once: newer clocks, unseen states, unseen removals', () => {
    const server = new awarenessProtocol.Awareness(new Y.Doc())
    server.setLocalState(null)
    const peer = new awarenessProtocol.Awareness(new Y.Doc())
    peer.setLocalStateField('user', 'p')
    awarenessProtocol.applyAwarenessUpdate(server, awarenessProtocol.encodeAwarenessUpdate(peer, [peer.clientID]), 'x')
    const client = new awarenessProtocol.Awareness(new Y.Doc())
    const apply = (ids: number[]): void => awarenessProtocol.applyAwarenessUpdate(client, awarenessProtocol.encodeAwarenessUpdate(server, ids), 'server')

    let ids = awarenessToSend(server, awarenessClocks(client))
    assert.deepEqual(ids, [peer.clientID])
    apply(ids)
    assert.deepEqual(awarenessToSend(server, awarenessClocks(client)), [])

    peer.setLocalStateField('user', 'p2')
    awarenessProtocol.applyAwarenessUpdate(server, awarenessProtocol.encodeAwarenessUpdate(peer, [peer.clientID]), 'x')
    ids = awarenessToSend(server, awarenessClocks(client))
    assert.deepEqual(ids, [peer.clientID])
    apply(ids)
    assert.deepEqual(client.getStates().get(peer.clientID), { user: 'p2' })

    awarenessProtocol.removeAwarenessStates(server, [peer.clientID], 'close')
    ids = awarenessToSend(server, awarenessClocks(client))
    assert.deepEqual(ids, [peer.clientID])
    apply(ids)
    assert.equal(client.getStates().has(peer.clientID), false)
    assert.deepEqual(awarenessToSend(server, awarenessClocks(client)), [])
    for (const a of [server, peer, client]) a.destroy()
  })
})
