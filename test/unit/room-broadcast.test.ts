import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import type { Bus, BusHandler } from '../../server/bus/bus.js'
import { GroupCommitter } from '../../server/committer.js'
import { createLogger } from '../../server/log.js'
import type { Peer } from '../../server/peer.js'
import { decodeMessage } from '../../server/protocol.js'
import { Room } from '../../server/room.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { storageWith } from '../helpers/storage.js'
import { waitFor } from '../helpers/wait.js'

const recordingPeer = (): Peer & { frames: Uint8Array[] } => {
  const frames: Uint8Array[] = []
  return { frames, canWrite: true, label: 'test', send: (frame) => { frames.push(frame) }, close: () => {} }
}

/** The document a fresh client would hold after applying the step 2 the room sent it. */
const step2Text = (frame: Uint8Array): string => {
  const message = decodeMessage(frame)
  assert.equal(message.type, 'sync-step2')
  const doc = new Y.Doc()
  Y.applyUpdate(doc, (message as { update: Uint8Array }).update)
  return doc.getText('text').toString()
}

/** A bus that hands the test the room's delivery handler once the room subscribes. */
const handingBus = (): Bus & { handler: BusHandler | null } => {
  const bus: Bus & { handler: BusHandler | null } = {
    handler: null,
    subscribe: async (_room, handler) => { bus.handler = handler; return { close: async () => {} } },
    publish: async () => {},
    close: async () => {},
  }
  return bus
}

const insert = (text: string): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('text').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

test('a fresh client gets the document as it is now, not a step 2 encoded before the last change', async () => {
  const log = createLogger('silent')
  const storage = new MemoryStorage()
  const room = new Room('cache', { storage, commits: new GroupCommitter(storage, log), bus: null, log, compactAfterRows: 500 })
  try {
    await room.loaded
    const empty = new Uint8Array([0])
    const first = recordingPeer()
    room.join(first)
    room.receive(first, { type: 'sync-step1', stateVector: empty })
    assert.equal(step2Text(first.frames.at(-1)!), '')

    await room.submitAndWait(insert('hello'))
    const second = recordingPeer()
    room.join(second)
    const step1 = decodeMessage(second.frames[0]!)
    assert.equal(step1.type, 'sync-step1')
    assert.deepEqual(Y.decodeStateVector((step1 as { stateVector: Uint8Array }).stateVector), Y.decodeStateVector(Y.encodeStateVector(room.doc)))
    room.receive(second, { type: 'sync-step1', stateVector: empty })
    assert.equal(step2Text(second.frames.at(-1)!), 'hello')

    // Served twice from one version: the same bytes.
    const third = recordingPeer()
    room.receive(third, { type: 'sync-step1', stateVector: empty })
    assert.equal(third.frames.at(-1), second.frames.at(-1))

    room.doc.getText('text').insert(5, ' world')
    await room.flushed()
    room.receive(third, { type: 'sync-step1', stateVector: empty })
    assert.equal(step2Text(third.frames.at(-1)!), 'hello world')
  } finally {
    room.destroy()
  }
})

test('a fresh client of a compacted room gets the stored snapshot as its step 2, until the document changes', async () => {
  const log = createLogger('silent')
  const storage = new MemoryStorage()
  await storage.append([{ room: 'compacted', update: insert('stored') }])
  await storage.compact('compacted')
  const [snapshot] = (await storage.load('compacted')).updates
  const room = new Room('compacted', { storage, commits: new GroupCommitter(storage, log), bus: null, log, compactAfterRows: 500 })
  try {
    await room.loaded
    const peer = recordingPeer()
    room.join(peer)
    room.receive(peer, { type: 'sync-step1', stateVector: new Uint8Array([0]) })
    const step2 = decodeMessage(peer.frames.at(-1)!)
    assert.equal(step2.type, 'sync-step2')
    assert.deepEqual(Buffer.from((step2 as { update: Uint8Array }).update), Buffer.from(snapshot!), 'the snapshot bytes, not a new encoding')
    await room.submitAndWait(insert('more'))
    room.receive(peer, { type: 'sync-step1', stateVector: new Uint8Array([0]) })
    assert.equal(step2Text(peer.frames.at(-1)!).length, 'storedmore'.length)
  } finally {
    room.destroy()
  }
})

test('a stored update goes out in the turn that stored it; what is applied in one turn goes out as one frame', async () => {
  const log = createLogger('silent')
  const storage = new MemoryStorage()
  // Three bus messages delivered in one turn, as one XREAD returns them.
  const bus = handingBus()
  const room = new Room('batching', { storage, commits: new GroupCommitter(storage, log), bus, log, compactAfterRows: 500 })
  const peer = recordingPeer()
  const updateFrames = (): Uint8Array[] => peer.frames.splice(0).flatMap((frame) => {
    const message = decodeMessage(frame)
    return message.type === 'sync-update' ? [message.update] : []
  })
  try {
    await room.loaded
    room.join(peer)
    await room.submitAndWait(insert('a'))
    assert.equal(updateFrames().length, 1, 'the update went out before its sender heard it was stored')

    for (const text of ['b', 'c', 'd']) bus.handler!.message({ kind: 'update', data: insert(text) })
    assert.equal(updateFrames().length, 0, 'nothing is sent in the middle of the turn')
    await Promise.resolve()
    const frames = updateFrames()
    assert.equal(frames.length, 1, 'three updates applied in one turn went out as one frame')
    const doc = new Y.Doc()
    Y.applyUpdate(doc, frames[0]!)
    assert.equal(doc.getText('text').toString().split('').sort().join(''), 'bcd')
  } finally {
    room.destroy()
  }
})

test('a bus gap reported while the room loads is read after the load: fresh clients get the newer document', async () => {
  const log = createLogger('silent')
  const inner = new MemoryStorage()
  await inner.append([{ room: 'gap', update: insert('old') }])
  await inner.compact('gap')
  // The load's read waits until the test lets it go; a reload's read does not.
  let releaseFirst: () => void = () => {}
  let reads = 0
  const storage = storageWith(inner, {
    load: async (room) => {
      const result = await inner.load(room)
      if (reads++ === 0) await new Promise<void>((resolve) => { releaseFirst = resolve })
      return result
    },
  })
  const bus = handingBus()
  const room = new Room('gap', { storage, commits: new GroupCommitter(storage, log), bus, log, compactAfterRows: 500 })
  try {
    await waitFor(() => bus.handler !== null && reads === 1, { message: 'the load is reading storage' })
    // Another instance stored more, and this one lost the bus message saying so.
    const later = new Y.Doc()
    Y.applyUpdate(later, (await inner.load('gap')).updates[0]!)
    later.getText('text').insert(3, ' and new')
    await inner.append([{ room: 'gap', update: Y.encodeStateAsUpdate(later) }])
    bus.handler!.gap()
    releaseFirst()
    await room.loaded
    await waitFor(() => room.doc.getText('text').toString() === 'old and new', { message: 'the reload applied' })
    const peer = recordingPeer()
    room.join(peer)
    room.receive(peer, { type: 'sync-step1', stateVector: new Uint8Array([0]) })
    assert.equal(step2Text(peer.frames.at(-1)!), 'old and new')
  } finally {
    room.destroy()
  }
})
