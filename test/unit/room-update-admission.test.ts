import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { SyncError } from '../../server/errors.js'
import { GroupCommitter } from '../../server/committer.js'
import { createLogger } from '../../server/log.js'
import type { Peer } from '../../server/peer.js'
import { decodeMessage } from '../../server/protocol.js'
import { Room } from '../../server/room.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import type { AppendEntry, Storage } from '../../server/storage/storage.js'
import { storageWith } from '../helpers/storage.js'
import { dependentUpdates } from '../helpers/updates.js'
import { waitFor } from '../helpers/wait.js'

interface GatedStorage extends Storage {
  /** Every commit so far; while `held`, each waits until the test settles it. */
  readonly commits: Array<{ entries: readonly AppendEntry[], settle: (error?: Error) => void }>
  held: boolean
}

const gatedStorage = (): GatedStorage => {
  const inner = new MemoryStorage()
  const storage: GatedStorage = {
    commits: [],
    held: true,
    ...storageWith(inner, {
      append: (entries) => new Promise<ReadonlyMap<string, number | null>>((resolve, reject) => {
        const settle = (error?: Error): void => error === undefined ? resolve(inner.append(entries)) : reject(error)
        storage.commits.push({ entries, settle })
        if (!storage.held) settle()
      }),
    }),
  }
  return storage
}

const newRoom = async (storage: Storage): Promise<Room> => {
  const log = createLogger('silent')
  const room = new Room('admission', { storage, commits: new GroupCommitter(storage, log), bus: null, log, compactAfterRows: 500 })
  await room.loaded
  return room
}

const peer = (): Peer & { frames: Uint8Array[], closes: number[] } => {
  const frames: Uint8Array[] = []
  const closes: number[] = []
  return { frames, closes, canWrite: true, label: 'test', send: (frame) => { frames.push(frame) }, close: (code) => { closes.push(code) } }
}

describe('a room admitting updates', () => {
  it('admits an update that continues one still waiting for its commit, and applies both in order', async () => {
    const storage = gatedStorage()
    const room = await newRoom(storage)
    const { first, second } = dependentUpdates()
    const stored = [room.submitAndWait(first)]
    await waitFor(() => storage.commits.length === 1, { message: 'the first update in flight' })
    stored.push(room.submitAndWait(second))
    storage.commits[0]!.settle()
    await waitFor(() => storage.commits.length === 2, { message: 'the second commit' })
    storage.commits[1]!.settle()
    assert.deepEqual(await Promise.all(stored), [true, true])
    assert.equal(room.doc.getText('text').toString(), 'ab')
    assert.equal(room.doc.store.pendingStructs, null)
    room.destroy()
  })

  it('fails the updates queued on top of a commit that failed, so that nothing waits in the document', async () => {
    const storage = gatedStorage()
    const room = await newRoom(storage)
    const { first, second } = dependentUpdates()
    const sender = peer()
    room.join(sender)
    const one = room.submitAndWait(first)
    await waitFor(() => storage.commits.length === 1, { message: 'the first update in flight' })
    room.receive(sender, { type: 'sync-update', update: second })
    storage.held = false
    storage.commits[0]!.settle(new Error('disk on fire'))
    await assert.rejects(one, (error) => error instanceof SyncError && error.code === 'STORAGE_UNAVAILABLE')
    assert.deepEqual(sender.closes, [4503], 'the sender of the queued update is closed, to resend it on reconnect')
    await room.flushed()
    for (const commit of storage.commits.slice(1)) assert.equal(commit.entries.length, 0, 'the queued update is not stored')
    assert.equal(room.doc.getText('text').toString(), '')
    assert.equal(room.doc.store.pendingStructs, null)
    room.destroy()
  })

  it('asks a peer whose update depends on missing content for it, at most once per interval, without closing it', async () => {
    const room = await newRoom(new MemoryStorage())
    const { second, both } = dependentUpdates()
    const client = peer()
    room.join(client)
    const stepOnes = (): number => client.frames.filter((frame) => decodeMessage(frame).type === 'sync-step1').length
    assert.equal(stepOnes(), 1, 'the step 1 every joiner gets')
    room.receive(client, { type: 'sync-update', update: second })
    room.receive(client, { type: 'sync-update', update: second })
    assert.equal(stepOnes(), 2, 'asked once')
    assert.deepEqual(client.closes, [])
    room.receive(client, { type: 'sync-step2', update: both })
    await room.flushed()
    assert.equal(room.doc.getText('text').toString(), 'ab')
    room.destroy()
  })
  it('tries a compaction that failed again only after a while, not after every commit', async () => {
    const inner = new MemoryStorage()
    let compactions = 0
    const storage = storageWith(inner, { compact: async () => { compactions++; throw new Error('a row cannot be merged') } })
    const log = createLogger('silent')
    const room = new Room('compaction', { storage, commits: new GroupCommitter(storage, log), bus: null, log, compactAfterRows: 1 })
    try {
      await room.loaded
      const author = new Y.Doc()
      for (let i = 0; i < 20; i++) {
        author.getText('text').insert(i, 'x')
        await room.submitAndWait(Y.encodeStateAsUpdate(author))
        await waitFor(() => compactions >= 1, { message: 'the first compaction ran' })
      }
      assert.equal(compactions, 1)
    } finally {
      room.destroy()
    }
  })
})
