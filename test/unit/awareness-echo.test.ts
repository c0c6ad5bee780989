import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { EchoAllowance, isAwarenessEcho } from '../../server/awareness-echo.js'
import * as protocol from '../../server/protocol.js'
import { encodeAwarenessRemoval, encodeAwarenessStates } from '../helpers/awareness.js'

/** A room's awareness holding client 7 at clock 3 and client 8 removed at clock 5. */
const made: awarenessProtocol.Awareness[] = []
const roomAwareness = (): awarenessProtocol.Awareness => {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc())
  awareness.setLocalState(null)
  awarenessProtocol.applyAwarenessUpdate(awareness, encodeAwarenessStates([[7, 3, '{"cursor":1}'], [8, 5, '{"cursor":2}']]), 'test')
  awarenessProtocol.applyAwarenessUpdate(awareness, encodeAwarenessRemoval(8, 5), 'test')
  made.push(awareness)
  return awareness
}

const frame = (update: Uint8Array): Uint8Array => protocol.encodeAwareness(update)

describe('isAwarenessEcho', () => {
  // An Awareness checks its states on a timer: destroyed, it lets the process end.
  afterEach(() => { for (const awareness of made.splice(0)) awareness.destroy() })

  it('takes states the room holds at that clock or a newer one, and removals it made, for echoes', () => {
    const awareness = roomAwareness()
    assert.equal(isAwarenessEcho(frame(encodeAwarenessStates([[7, 3, '{"cursor":1}']])), awareness), true)
    assert.equal(isAwarenessEcho(frame(encodeAwarenessStates([[7, 2, '{"cursor":0}']])), awareness), true)
    assert.equal(isAwarenessEcho(frame(encodeAwarenessRemoval(8, 5)), awareness), true)
  })

  it('takes anything that could change the room for news', () => {
    const awareness = roomAwareness()
    // a newer clock
    assert.equal(isAwarenessEcho(frame(encodeAwarenessStates([[7, 4, '{"cursor":9}']])), awareness), false)
    // a client the room has not met
    assert.equal(isAwarenessEcho(frame(encodeAwarenessStates([[9, 1, '{}']])), awareness), false)
    // a removal at the clock of a state the room holds
    assert.equal(isAwarenessEcho(frame(encodeAwarenessRemoval(7, 3)), awareness), false)
    // a state the room removed, announced again (the room raises it: awareness-revival.ts)
    assert.equal(isAwarenessEcho(frame(encodeAwarenessStates([[8, 5, '{"cursor":2}']])), awareness), false)
    // one new entry among echoes
    assert.equal(isAwarenessEcho(frame(encodeAwarenessStates([[7, 3, '{"cursor":1}'], [9, 1, '{}']])), awareness), false)
  })

  it('takes malformed or other frames for news, for the ordinary path to judge', () => {
    const awareness = roomAwareness()
    const echo = frame(encodeAwarenessStates([[7, 3, '{"cursor":1}']]))
    assert.equal(isAwarenessEcho(echo.subarray(0, echo.length - 1), awareness), false)
    assert.equal(isAwarenessEcho(Uint8Array.of(...echo, 0), awareness), false)
    assert.equal(isAwarenessEcho(protocol.encodeQueryAwareness(), awareness), false)
    assert.equal(isAwarenessEcho(frame(encodeAwarenessStates([])), awareness), false)
    assert.equal(isAwarenessEcho(new Uint8Array(0), awareness), false)
  })
})

describe('EchoAllowance', () => {
  it('grants one echo per awareness frame sent, up to its cap', () => {
    const allowance = new EchoAllowance(2)
    assert.equal(allowance.take(), false)
    allowance.sent(protocol.encodeSyncUpdate(new Uint8Array([0, 0])))
    assert.equal(allowance.take(), false)
    for (let i = 0; i < 5; i++) allowance.sent(frame(encodeAwarenessStates([[7, 3, '{}']])))
    assert.deepEqual([allowance.take(), allowance.take(), allowance.take()], [true, true, false])
  })
})
