import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { AwarenessOwners } from '../../server/bus/awareness-owners.js'

const created: awarenessProtocol.Awareness[] = []
/** An Awareness runs a timer until destroyed. */
const client = (): awarenessProtocol.Awareness => {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc())
  created.push(awareness)
  return awareness
}

describe('AwarenessOwners', () => {
  afterEach(() => { for (const awareness of created.splice(0)) awareness.destroy() })

  it('builds a removal that y-protocols applies for the states of a dead instance only', () => {
    const [a, b] = [client(), client()]
    a.setLocalStateField('cursor', 1)
    b.setLocalStateField('cursor', 2)
    const server = client()
    server.setLocalState(null)
    const owners = new AwarenessOwners()
    for (const [instance, awareness] of [['one', a], ['two', b]] as const) {
      const update = awarenessProtocol.encodeAwarenessUpdate(awareness, [awareness.clientID])
      owners.record(instance, update)
      awarenessProtocol.applyAwarenessUpdate(server, update, 'bus')
    }
    assert.deepEqual(owners.instances(), new Set(['one', 'two']))
    const removal = owners.removeInstance('one')
    assert.ok(removal !== null)
    awarenessProtocol.applyAwarenessUpdate(server, removal, 'bus')
    assert.equal(server.getStates().has(a.clientID), false)
    assert.equal(server.getStates().has(b.clientID), true)
    assert.equal(owners.removeInstance('one'), null)
  })

  it('does not remove a client that announced a newer state since', () => {
    const a = client()
    a.setLocalStateField('cursor', 1)
    const server = client()
    server.setLocalState(null)
    const owners = new AwarenessOwners()
    owners.record('dead', awarenessProtocol.encodeAwarenessUpdate(a, [a.clientID]))
    a.setLocalStateField('cursor', 2)
    awarenessProtocol.applyAwarenessUpdate(server, awarenessProtocol.encodeAwarenessUpdate(a, [a.clientID]), 'bus')
    awarenessProtocol.applyAwarenessUpdate(server, owners.removeInstance('dead')!, 'bus')
    assert.equal(server.getStates().get(a.clientID)?.cursor, 2)
  })

  it('ignores bytes it cannot read', () => {
    const owners = new AwarenessOwners()
    owners.record('x', Uint8Array.of(5, 1))
    assert.equal(owners.removeInstance('x'), null)
  })
})
