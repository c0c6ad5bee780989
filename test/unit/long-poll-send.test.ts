import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { SyncError } from '../../server/errors.js'
import * as protocol from '../../server/protocol.js'
import { MERGE_RUN, planSend } from '../../server/transport/long-poll-send.js'
import { encodeFrames } from '../../server/transport/long-poll-wire.js'

const writer = { mode: 'write' } as Parameters<typeof planSend>[1]

/** `count` one-letter inserts, each its own update frame. */
const typing = (count: number): { doc: Y.Doc, frames: Uint8Array[] } => {
  const doc = new Y.Doc()
  const frames: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => frames.push(protocol.encodeSyncUpdate(update)))
  for (let i = 0; i < count; i++) doc.getText('text').insert(i, String.fromCharCode(97 + (i % 26)))
  return { doc, frames }
}

describe('a long-poll send\'s plan', () => {
  it('hands a body of a few updates on one by one', () => {
    const { frames } = typing(MERGE_RUN)
    assert.equal(planSend(encodeFrames(frames), writer).updates.length, MERGE_RUN)
  })

  it('merges a body of many updates in runs, into the same content', () => {
    const { doc, frames } = typing(10 * MERGE_RUN + 1)
    const plan = planSend(encodeFrames(frames), writer)
    assert.equal(plan.frames, frames.length)
    assert.equal(plan.updates.length, 11)
    const copy = new Y.Doc()
    for (const update of plan.updates) Y.applyUpdate(copy, update)
    assert.equal(copy.getText('text').toString(), doc.getText('text').toString())
  })

  it('refuses a body of many updates with one Yjs cannot read, naming it', () => {
    const { frames } = typing(3 * MERGE_RUN)
    frames[150] = protocol.encodeSyncUpdate(new Uint8Array([1, 1, 200, 200, 200]))
    assert.throws(() => planSend(encodeFrames(frames), writer), (error: unknown) =>
      error instanceof SyncError && error.code === 'BAD_UPDATE' && /cannot be decoded/.test(error.message))
  })
})
