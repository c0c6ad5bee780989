import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as authProtocol from 'y-protocols/auth'
import * as Y from 'yjs'
import * as protocol from '../../server/protocol.js'

/** A frame as the stock y-websocket client builds it. */
const clientFrame = (write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder()
  write(encoder)
  return encoding.toUint8Array(encoder)
}

describe('protocol', () => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, 'hello')
  const update = Y.encodeStateAsUpdate(doc)
  const stateVector = Y.encodeStateVector(doc)

  it('decodes sync step 1 as the stock client encodes it', () => {
    const frame = clientFrame((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep1(e, doc) })
    assert.deepEqual(protocol.decodeMessage(frame), { type: 'sync-step1', stateVector })
  })

  it('decodes sync step 2 and update', () => {
    const step2 = clientFrame((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep2(e, doc) })
    assert.deepEqual(protocol.decodeMessage(step2), { type: 'sync-step2', update })
    const incremental = clientFrame((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeUpdate(e, update) })
    assert.deepEqual(protocol.decodeMessage(incremental), { type: 'sync-update', update })
  })

  it('decodes awareness and query awareness', () => {
    const awareness = new awarenessProtocol.Awareness(doc)
    awareness.setLocalState({ name: 'a' })
    const inner = awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID])
    const frame = clientFrame((e) => { encoding.writeVarUint(e, 1); encoding.writeVarUint8Array(e, inner) })
    assert.deepEqual(protocol.decodeMessage(frame), { type: 'awareness', update: inner })
    assert.deepEqual(protocol.decodeMessage(Uint8Array.of(3)), { type: 'query-awareness' })
    awareness.destroy()
  })

  it('decodes permission denied as y-protocols writes it', () => {
    const frame = clientFrame((e) => { encoding.writeVarUint(e, 2); authProtocol.writePermissionDenied(e, 'no') })
    assert.deepEqual(protocol.decodeMessage(frame), { type: 'auth', denied: true, reason: 'no' })
  })

  it('encodes frames byte-identical to y-protocols', () => {
    assert.deepEqual(protocol.encodeSyncStep1(stateVector),
      clientFrame((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep1(e, doc) }))
    assert.deepEqual(protocol.encodeSyncStep2(update),
      clientFrame((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep2(e, doc) }))
    assert.deepEqual(protocol.encodeSyncUpdate(update),
      clientFrame((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeUpdate(e, update) }))
    assert.deepEqual(protocol.encodePermissionDenied('x'),
      clientFrame((e) => { encoding.writeVarUint(e, 2); authProtocol.writePermissionDenied(e, 'x') }))
    assert.deepEqual(protocol.encodeQueryAwareness(), Uint8Array.of(3))
    assert.deepEqual(protocol.decodeMessage(protocol.encodeAwareness(Uint8Array.of(7, 8))), { type: 'awareness', update: Uint8Array.of(7, 8) })
  })

  it('ignores bytes after the first message, as the reference does', () => {
    const frame = new Uint8Array([...protocol.encodeSyncUpdate(update), 0xff, 0xff])
    assert.deepEqual(protocol.decodeMessage(frame), { type: 'sync-update', update })
  })

  for (const [name, bytes] of [
    ['an empty frame', []],
    ['a truncated varint type', [0x80]],
    ['an unknown message type', [9]],
    ['an unknown sync type', [0, 7, 0]],
    ['a sync message without a subtype', [0]],
    ['a length longer than the frame', [0, 2, 10, 1, 2]],
    ['a truncated length varint', [0, 2, 0xff]],
    ['an awareness message without payload', [1]],
    ['a varint past the safe integer range', [0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
  ] as const) {
    it(`rejects ${name} with a ProtocolError`, () => {
      assert.throws(() => protocol.decodeMessage(Uint8Array.from(bytes)), protocol.ProtocolError)
    })
  }

  it('returns views into the frame rather than copies', () => {
    const frame = protocol.encodeSyncUpdate(update)
    const message = protocol.decodeMessage(frame)
    assert.equal(message.type, 'sync-update')
    if (message.type === 'sync-update') assert.equal(message.update.buffer, frame.buffer)
  })
})
