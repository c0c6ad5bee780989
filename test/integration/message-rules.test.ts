/**
 * The message rules are the room's, whatever the transport: each case runs over a socket and over
 * long-polling and expects the same decision, expressed as that transport expresses it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { WebSocket } from 'ws'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import * as protocol from '../../server/protocol.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { decodeFrames, encodeFrames } from '../../server/transport/long-poll-wire.js'
import { openRaw } from '../helpers/raw-socket.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { storageWith } from '../helpers/storage.js'
import { waitFor } from '../helpers/wait.js'

type Transport = 'socket' | 'long-poll'
const TRANSPORTS: readonly Transport[] = ['socket', 'long-poll']

/**
 * Sends `frames` as a client of `room` and returns the messages the room answered them with (for a
 * socket, those after its join greeting), and whether the client is still served.
 */
const exchange = async (server: TestServer, transport: Transport, room: string, frames: Uint8Array[], query = ''): Promise<{ messages: protocol.Message[], open: boolean }> => {
  if (transport === 'long-poll') {
    const res = await fetch(`${server.http}/poll/${room}?op=send${query}`, { method: 'POST', body: encodeFrames(frames) })
    assert.equal(res.status, 200, await res.clone().text())
    return { messages: decodeFrames(new Uint8Array(await res.arrayBuffer())).map(protocol.decodeMessage), open: true }
  }
  const raw = await openRaw(server.url, `${room}${query === '' ? '' : `?${query.slice(1)}`}`)
  try {
    await waitFor(() => raw.frames.length > 0, { message: 'the join greeting' })
    const greeting = raw.frames.length
    for (const frame of frames) raw.send(frame)
    // The room answers in order, and every step 1 with a step 2: one more step 1 marks the end of the answers.
    raw.send(protocol.encodeSyncStep1(new Uint8Array([0])))
    const step2s = frames.filter((f) => protocol.decodeMessage(f).type === 'sync-step1').length + 1
    const answers = (): protocol.Message[] => raw.frames.slice(greeting).map(protocol.decodeMessage)
    await waitFor(() => answers().filter((m) => m.type === 'sync-step2').length === step2s, { message: 'the answer to the last message' })
    const messages = answers()
    return { messages: messages.slice(0, messages.findLastIndex((m) => m.type === 'sync-step2')), open: raw.ws.readyState === WebSocket.OPEN }
  } finally {
    raw.ws.close()
  }
}

/** Updates of one client, and the one update a compaction would store for them: bytes Yjs encodes differently. */
const compactedHistory = (): { merged: Uint8Array, text: string } => {
  const doc = new Y.Doc()
  doc.clientID = 1
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => updates.push(update))
  doc.getText('text').insert(0, 'abc')
  doc.getText('text').insert(3, 'def')
  doc.getText('text').delete(1, 2)
  return { merged: Y.mergeUpdates(updates), text: doc.getText('text').toString() }
}

describe('the message rules, over a socket and over long-polling', () => {
  let server: TestServer
  const { merged, text } = compactedHistory()
  /** An awareness state for the room to echo: every answer then ends with an awareness frame. */
  const presence = new awarenessProtocol.Awareness(new Y.Doc())
  presence.setLocalStateField('user', 'here')

  before(async () => {
    const storage = new MemoryStorage()
    server = await startServer({
      storage: storageWith(storage, {
        // Every room named compacted-* is stored as one compacted snapshot, written by Y.mergeUpdates.
        load: async (room, after) => room.startsWith('compacted-') && after === undefined ? { ...await storage.load(room), updates: [merged], logRows: 0 } : storage.load(room, after),
      }),
      authorize: (request) => ({ mode: request.url?.includes('token=reader') === true ? 'read' : 'write' }),
    })
  })
  after(async () => {
    presence.destroy()
    await server.close()
  })

  for (const transport of TRANSPORTS) {
    it(`${transport}: a fresh client's step 1 is answered with the room's cached whole document, the snapshot's own bytes`, async () => {
      const { messages } = await exchange(server, transport, `compacted-${transport}`, [protocol.encodeSyncStep1(new Uint8Array([0]))])
      const step2 = messages.find((m) => m.type === 'sync-step2')
      assert.ok(step2 !== undefined && step2.type === 'sync-step2')
      // Re-encoded by Yjs, the same document has other bytes: these are the stored snapshot's.
      assert.notDeepEqual(Y.encodeStateAsUpdate(((doc) => { Y.applyUpdate(doc, merged); return doc })(new Y.Doc())), merged)
      assert.deepEqual(step2.update, merged)
      const doc = new Y.Doc()
      Y.applyUpdate(doc, step2.update)
      assert.equal(doc.getText('text').toString(), text)
    })

    it(`${transport}: a read-only client's edit is refused with permission denied, changes nothing, and the client is still served`, async () => {
      const room = `read-only-${transport}`
      await server.server.transact(room, (doc) => doc.getText('text').insert(0, 'kept'))
      const sneaky = new Y.Doc()
      sneaky.getText('text').insert(0, 'sneaky')
      const update = Y.encodeStateAsUpdate(sneaky)
      const announce = protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(presence, [presence.clientID]))
      const { messages, open } = await exchange(server, transport, room,
        [protocol.encodeSyncUpdate(update), protocol.encodeSyncStep2(update), announce], '&token=reader')
      const denials = messages.filter((m) => m.type === 'auth' && m.denied)
      // A socket is told once per edit; a long-poll send, once however many edits it holds.
      assert.equal(denials.length, transport === 'socket' ? 2 : 1, 'permission denied')
      assert.ok(open, 'still served')
      const handle = await server.server.openRoom(room)
      try {
        assert.equal(handle.doc.getText('text').toString(), 'kept')
        // The rest of what it sent took effect: a reader may announce itself.
        assert.deepEqual(server.server.loadedRoom(room)!.awareness.getStates().get(presence.clientID), { user: 'here' })
      } finally {
        handle.release()
      }
    })
  }
})
