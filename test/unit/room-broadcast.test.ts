import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { GroupCommitter } from '../../server/committer.js'
import { createLogger } from '../../server/log.js'
import type { Peer } from '../../server/peer.js'
import { decodeMessage } from '../../server/protocol.js'
import { Room } from '../../server/room.js'
import { MemoryStorage } from '../../server/storage/memory.js'
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

test('a quiet room sends a committed update at once; a busy one merges what commits meanwhile into one frame', async () => {
  const log = createLogger('silent')
  const storage = new MemoryStorage()
  const room = new Room('batching', { storage, commits: new GroupCommitter(storage, log), bus: null, log, compactAfterRows: 500 })
  // A peer whose sends are slow, as 1,000 sockets would be: the room must space its broadcasts.
  const frames: Uint8Array[] = []
  const slow: Peer = {
    canWrite: true,
    label: 'slow',
    send: (frame) => {
      frames.push(frame)
      const until = performance.now() + 5
      while (performance.now() < until) { /* the cost of many sockets */ }
    },
    close: () => {},
  }
  try {
    await room.loaded
    room.join(slow)
    const before = frames.length
    await room.submitAndWait(insert('a'))
    assert.equal(frames.length, before + 1, 'the first update went out as soon as it was stored')
    for (const text of ['b', 'c', 'd', 'e']) await room.submitAndWait(insert(text))
    const doc = new Y.Doc()
    let updateFrames = 0
    await waitFor(() => {
      for (const frame of frames.splice(0)) {
        const message = decodeMessage(frame)
        if (message.type !== 'sync-update') continue
        updateFrames++
        Y.applyUpdate(doc, message.update)
      }
      return doc.getText('text').length === 5
    }, { timeoutMs: 10_000, message: 'every update to reach the slow peer' })
    assert.equal(doc.getText('text').toString().split('').sort().join(''), 'abcde')
    assert.ok(updateFrames < 5, `the four updates committed while the room was busy were merged (got ${updateFrames} frames)`)
  } finally {
    room.destroy()
  }
})
