import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import {
  asRemovals, checkStatesAreJson, encodeAwarenessEntries, readAwarenessEntries, readAwarenessEntriesOrNull,
} from '../../server/awareness-codec.js'
import { ProtocolError } from '../../server/protocol.js'

describe('awareness codec', () => {
  it('reads what y-protocols writes, and writes what y-protocols reads', () => {
    const a = new awarenessProtocol.Awareness(new Y.Doc())
    const b = new awarenessProtocol.Awareness(new Y.Doc())
    try {
      a.setLocalStateField('user', { name: 'Zoë' })
      const update = awarenessProtocol.encodeAwarenessUpdate(a, [a.clientID])
      const entries = readAwarenessEntries(update)
      assert.deepEqual(entries, [[a.clientID, a.meta.get(a.clientID)!.clock, JSON.stringify(a.getLocalState())]])
      assert.deepEqual(encodeAwarenessEntries(entries), update)
      awarenessProtocol.applyAwarenessUpdate(b, encodeAwarenessEntries(entries), 'test')
      assert.deepEqual(b.states.get(a.clientID), { user: { name: 'Zoë' } })
    } finally {
      a.destroy()
      b.destroy()
    }
  })

  it('refuses bytes that are no awareness update, naming what is wrong', () => {
    assert.throws(() => readAwarenessEntries(new Uint8Array([2, 5, 1, 2, 0x7b, 0x7d])), (error: Error) =>
      error instanceof ProtocolError && /truncated awareness update: missing awareness client id/.test(error.message))
    assert.throws(() => readAwarenessEntries(new Uint8Array([1, 5, 1, 9, 0x7b])), /truncated/)
    // y-protocols (through lib0) refuses a state that is not UTF-8: so does the codec, before anything applies.
    assert.throws(() => readAwarenessEntries(new Uint8Array([1, 5, 1, 1, 0xff])), /not UTF-8/)
    assert.equal(readAwarenessEntriesOrNull(new Uint8Array([5, 1])), null)
  })

  it('checks that states are JSON without applying them', () => {
    checkStatesAreJson(readAwarenessEntries(encodeAwarenessEntries([[5, 1, '{"x":1}'], [6, 2, 'null']])))
    assert.throws(() => checkStatesAreJson(readAwarenessEntries(new Uint8Array([1, 5, 1, 3, 0x7b, 0x7b, 0x7b]))), /not JSON/)
  })

  it('turns the states of some clients into removals at the same clocks', () => {
    const update = encodeAwarenessEntries([[5, 3, '{"a":1}'], [6, 4, '{"b":2}']])
    assert.deepEqual(readAwarenessEntries(asRemovals(update, new Set([6]))), [[5, 3, '{"a":1}'], [6, 4, 'null']])
    assert.equal(asRemovals(update, new Set([7])), update)
  })
})
