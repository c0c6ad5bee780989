import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as Y from 'yjs'
import { CLAIM_WINDOW, type Storage } from '../../server/storage/storage.js'
import { edit, textOf } from './storage-contract.js'

/**
 * What storages that several instances share (those with `heads`) must do: number each room's commits,
 * give catch-up reads from a commit on, and refuse a commit whose claimed ids a later commit took.
 */
export const sequenceContract = (name: string, open: () => Promise<Storage>, unique: (room: string) => string = (r) => r): void => {
  describe(`${name} storage: commit sequence and claims`, () => {
    let storage: Storage
    before(async () => { storage = await open() })
    after(async () => { await storage.close() })

    it('numbers each room\'s commits, reports the latest in one query, and reads from a commit on', async () => {
      const [a, b, none] = [unique('seq-a'), unique('seq-b'), unique('seq-none')]
      const doc = new Y.Doc()
      const u1 = edit(doc, (t) => t.insert(0, 'one '))
      const u2 = edit(doc, (t) => t.insert(4, 'two '))
      const u3 = edit(doc, (t) => t.insert(8, 'three'))
      assert.deepEqual([...await storage.append([{ room: a, update: u1 }, { room: b, update: u1 }, { room: a, update: u2 }])], [[a, 1], [b, 1]])
      assert.deepEqual([...await storage.append([{ room: a, update: u3 }])], [[a, 2]])
      assert.deepEqual([...await storage.heads!([a, b, none])].sort(), [[a, 2], [b, 1], [none, 0]].sort())
      const whole = await storage.load(a)
      assert.equal(whole.seq, 2)
      assert.equal(textOf(whole.updates), 'one two three')
      const since1 = await storage.load(a, 1)
      assert.deepEqual(since1.updates.map((u) => Buffer.from(u)), [Buffer.from(u3)])
      assert.equal(since1.seq, 2)
      assert.deepEqual((await storage.load(a, 2)).updates, [])
      // After compaction a read from an older commit needs the snapshot: it gets everything.
      await storage.compact(a)
      assert.equal(textOf((await storage.load(a, 1)).updates), 'one two three')
      assert.deepEqual((await storage.load(a, 2)).updates, [])
      const u4 = edit(doc, (t) => t.insert(0, '>'))
      await storage.append([{ room: a, update: u4 }])
      assert.deepEqual((await storage.load(a, 2)).updates.map((u) => Buffer.from(u)), [Buffer.from(u4)])
    })

    it('refuses a commit whose claims overlap a commit made after its `after`, and nothing else', async () => {
      const room = unique('claims')
      const x = new Uint8Array([0, 0])
      const claim = (client: number, from: number, to: number): Array<{ client: number, from: number, to: number }> => [{ client, from, to }]
      assert.equal((await storage.append([{ room, update: x, after: 0, claims: claim(42, 0, 5) }])).get(room), 1)
      // Another instance that held nothing yet, claiming ids 42:3-7: refused, and not stored.
      assert.equal((await storage.append([{ room, update: x, after: 0, claims: claim(42, 3, 7) }])).get(room), null)
      assert.equal((await storage.load(room)).updates.length, 1)
      // Other clients, or the ids after the ones taken, pass without having seen commit 1.
      assert.equal((await storage.append([{ room, update: x, after: 0, claims: claim(43, 0, 9) }])).get(room), 2)
      assert.equal((await storage.append([{ room, update: x, after: 1, claims: claim(42, 5, 7) }])).get(room), 3)
      // Having seen commit 1, ids 42:0-5 are known to be taken: a claim on them is checked only against later commits.
      assert.equal((await storage.append([{ room, update: x, after: 3, claims: claim(42, 0, 5) }])).get(room), 4)
      // A refused room does not hold back the others of the same batch.
      const other = unique('claims-other')
      const both = await storage.append([{ room, update: x, after: 0, claims: claim(43, 8, 10) }, { room: other, update: x, after: 0, claims: claim(43, 8, 10) }])
      assert.deepEqual([both.get(room), both.get(other)], [null, 1])
      // A writer more than CLAIM_WINDOW commits behind cannot be checked: refused until it catches up.
      for (let i = 0; i < CLAIM_WINDOW + 1; i++) await storage.append([{ room, update: x }])
      assert.equal((await storage.append([{ room, update: x, after: 4, claims: claim(99, 0, 1) }])).get(room), null)
      const head = (await storage.heads!([room])).get(room)!
      assert.equal((await storage.append([{ room, update: x, after: head, claims: claim(99, 0, 1) }])).get(room), head + 1)
    })
  })
}
