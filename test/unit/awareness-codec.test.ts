import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as decoding from 'lib0/decoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import {
  asRemovals, AwarenessEntryCursor, checkStatesAreJson, encodeAwarenessEntries, readAwarenessEntries, readAwarenessEntriesOrNull,
} from '../../server/awareness-codec.js'
import { encodeAwareness, ProtocolError } from '../../server/protocol.js'

/** Every entry a cursor walks: id, clock, the state's bytes as text, whether it is a removal; and `done` at the end. */
const walk = (cursor: AwarenessEntryCursor): { entries: [number, number, string, boolean][], done: boolean } => {
  const entries: [number, number, string, boolean][] = []
  while (cursor.next()) {
    entries.push([cursor.client, cursor.clock, Buffer.from(cursor.bytes.subarray(cursor.stateStart, cursor.end)).toString('latin1'), cursor.removal])
  }
  return { entries, done: cursor.done }
}

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

  it('reads the 53-bit client ids of Yjs 14, and refuses ids past 2^53 - 1', () => {
    const max = Number.MAX_SAFE_INTEGER
    assert.deepEqual(readAwarenessEntries(encodeAwarenessEntries([[max, 1, '{}']])), [[max, 1, '{}']])
    // 2^56 - 1 as a varuint: lib0 reads it, as an inexact number
    const unsafe = new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 0x7b, 0x7d])
    assert.throws(() => readAwarenessEntries(unsafe), (error: Error) =>
      error instanceof ProtocolError && /awareness client id at byte 1 is past 2\^53 - 1/.test(error.message))
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

  describe('AwarenessEntryCursor', () => {
    it('walks ids, clocks and where each state lies, decoding no state', () => {
      // The second state is neither JSON nor UTF-8: the cursor does not look.
      const bytes = Uint8Array.of(2, 5, 3, 7, ...Buffer.from('{"a":1}'), 6, 4, 2, 0xff, 0xfe)
      const cursor = new AwarenessEntryCursor(decoding.createDecoder(bytes))
      assert.equal(cursor.count, 2)
      assert.deepEqual(walk(cursor), { entries: [[5, 3, '{"a":1}', false], [6, 4, '\xff\xfe', false]], done: true })
      assert.equal(cursor.next(), false)
    })

    it('marks the entry where each state begins, so an entry can be copied as it came', () => {
      const update = encodeAwarenessEntries([[5, 3, '{"a":1}'], [300, 70000, 'null']])
      const cursor = new AwarenessEntryCursor(decoding.createDecoder(update))
      const copied: Uint8Array[] = []
      const removals: boolean[] = []
      while (cursor.next()) {
        copied.push(update.subarray(cursor.entryStart, cursor.end))
        removals.push(cursor.removal)
      }
      assert.deepEqual(removals, [false, true])
      assert.deepEqual(Uint8Array.of(2, ...copied[0]!, ...copied[1]!), update)
    })

    it('reads an update inside an awareness frame, past its header, with no copy', () => {
      const frame = encodeAwareness(encodeAwarenessEntries([[7, 1, '{}'], [8, 2, 'null']]))
      const decoder = decoding.createDecoder(frame)
      decoding.readVarUint(decoder) // message type
      decoding.readVarUint(decoder) // update length
      const cursor = new AwarenessEntryCursor(decoder)
      assert.equal(cursor.bytes, frame)
      assert.deepEqual(walk(cursor), { entries: [[7, 1, '{}', false], [8, 2, 'null', true]], done: true })
    })

    it('is not done while bytes follow the last entry', () => {
      const update = Uint8Array.of(...encodeAwarenessEntries([[5, 1, '{}']]), 0)
      assert.deepEqual(walk(new AwarenessEntryCursor(decoding.createDecoder(update))), { entries: [[5, 1, '{}', false]], done: false })
    })

    it('gives the state as text, refusing bytes that are not UTF-8', () => {
      const cursor = new AwarenessEntryCursor(decoding.createDecoder(new Uint8Array([2, 5, 1, 2, 0x7b, 0x7d, 6, 1, 1, 0xff])))
      assert.equal(cursor.next(), true)
      assert.equal(cursor.state(), '{}')
      assert.equal(cursor.next(), true)
      assert.throws(() => cursor.state(), (error: Error) => error instanceof ProtocolError && /not UTF-8/.test(error.message))
    })

    it('refuses bytes that stop being an awareness update, naming the field', () => {
      const refusal = (bytes: number[]): string => {
        const cursor = new AwarenessEntryCursor(decoding.createDecoder(new Uint8Array(bytes)))
        try {
          while (cursor.next());
        } catch (error) {
          assert.ok(error instanceof ProtocolError)
          return error.message
        }
        assert.fail('no error')
      }
      assert.throws(() => new AwarenessEntryCursor(decoding.createDecoder(new Uint8Array(0))), /truncated awareness update: missing awareness state count/)
      assert.equal(refusal([2, 5, 1, 2, 0x7b, 0x7d]), 'truncated awareness update: missing awareness client id')
      assert.equal(refusal([1, 5]), 'truncated awareness update: missing awareness clock')
      assert.equal(refusal([1, 5, 1]), 'truncated awareness update: missing awareness state length')
      assert.equal(refusal([1, 5, 1, 9, 0x7b]), 'truncated awareness update: awareness state says 9 bytes, 1 left')
      assert.equal(refusal([1, 5, 0x80]), 'malformed varint in awareness clock at byte 2')
    })
  })
})
