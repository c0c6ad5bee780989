import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { reviveAwarenessStates } from '../../server/awareness-revival.js'
import { encodeAwarenessRemoval } from '../helpers/awareness.js'

const made: awarenessProtocol.Awareness[] = []
// Each one runs a timer until destroyed.
afterEach(() => { for (const awareness of made.splice(0)) awareness.destroy() })

/** A client's awareness, and the room's copy of it. */
const pair = (): { client: awarenessProtocol.Awareness, room: awarenessProtocol.Awareness } => {
  const client = new awarenessProtocol.Awareness(new Y.Doc())
  const room = new awarenessProtocol.Awareness(new Y.Doc())
  room.setLocalState(null)
  made.push(client, room)
  return { client, room }
}

const announce = (awareness: awarenessProtocol.Awareness): Uint8Array =>
  awarenessProtocol.encodeAwarenessUpdate(awareness, [awareness.clientID])

describe('reviveAwarenessStates', () => {
  it('raises the clock of a state the room removed and the client announces again, past the removal', () => {
    const { client, room } = pair()
    client.setLocalStateField('user', 'ada')
    awarenessProtocol.applyAwarenessUpdate(room, announce(client), 'peer')
    awarenessProtocol.removeAwarenessStates(room, [client.clientID], 'close')
    const removedAt = room.meta.get(client.clientID)!.clock
    // As sent after a reconnect: the same clock, which y-protocols takes for an old state.
    const again = announce(client)
    awarenessProtocol.applyAwarenessUpdate(room, again, 'peer')
    assert.equal(room.states.has(client.clientID), false)

    const revived = reviveAwarenessStates(room, again)
    awarenessProtocol.applyAwarenessUpdate(room, revived, 'peer')
    assert.deepEqual(room.states.get(client.clientID), { user: 'ada' })
    assert.equal(room.meta.get(client.clientID)!.clock, removedAt + 1)
    // Echoed back, the client adopts the clock, so that its next change is newer than the revival.
    awarenessProtocol.applyAwarenessUpdate(client, revived, 'server')
    client.setLocalStateField('user', 'ada lovelace')
    awarenessProtocol.applyAwarenessUpdate(room, reviveAwarenessStates(room, announce(client)), 'peer')
    assert.deepEqual(room.states.get(client.clientID), { user: 'ada lovelace' })
  })

  it('leaves alone a removed state that the sender may only be echoing', () => {
    const { client, room } = pair()
    client.setLocalStateField('user', 'ada')
    awarenessProtocol.applyAwarenessUpdate(room, announce(client), 'peer')
    awarenessProtocol.removeAwarenessStates(room, [client.clientID], 'close')
    // Another client sends the state back as it received it, after the room removed it.
    const echo = announce(client)
    assert.equal(reviveAwarenessStates(room, echo, () => false), echo)
    awarenessProtocol.applyAwarenessUpdate(room, echo, 'other peer')
    assert.equal(room.states.has(client.clientID), false)
  })

  it('raises a state the room sees first past the removal another client may have heard (after a restart, on another instance)', () => {
    const { client, room } = pair()
    const other = new awarenessProtocol.Awareness(new Y.Doc())
    made.push(other)
    client.setLocalStateField('user', 'ada')
    // The other client heard the state, then its removal by the instance that went away.
    awarenessProtocol.applyAwarenessUpdate(other, announce(client), 'old instance')
    const clock = other.meta.get(client.clientID)!.clock
    awarenessProtocol.applyAwarenessUpdate(other, encodeAwarenessRemoval(client.clientID, clock + 1), 'old instance')
    assert.equal(other.states.has(client.clientID), false)

    // The room has never seen the client: as announced, the other client would ignore the state.
    const raised = reviveAwarenessStates(room, announce(client))
    awarenessProtocol.applyAwarenessUpdate(room, raised, 'peer')
    assert.equal(room.meta.get(client.clientID)!.clock, clock + 2)
    awarenessProtocol.applyAwarenessUpdate(other, raised, 'room')
    assert.deepEqual(other.states.get(client.clientID), { user: 'ada' })
    // Echoed back, the client adopts the clock.
    awarenessProtocol.applyAwarenessUpdate(client, raised, 'room')
    assert.equal(client.meta.get(client.clientID)!.clock, clock + 2)
    assert.deepEqual(client.getLocalState(), { user: 'ada' })
  })

  it('returns the update itself when nothing needs raising, or when it cannot be read', () => {
    const { client, room } = pair()
    client.setLocalStateField('user', 'ada')
    awarenessProtocol.applyAwarenessUpdate(room, reviveAwarenessStates(room, announce(client)), 'peer')
    client.setLocalStateField('user', 'ada lovelace')
    const newer = announce(client)
    assert.equal(reviveAwarenessStates(room, newer), newer, 'a newer state')
    client.setLocalState(null)
    const leaving = announce(client)
    assert.equal(reviveAwarenessStates(room, leaving), leaving, 'a removal')
    const garbage = new Uint8Array([5, 0x80])
    assert.equal(reviveAwarenessStates(room, garbage), garbage)
  })
})
