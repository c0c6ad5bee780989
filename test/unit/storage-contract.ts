import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as Y from 'yjs'
import type { Storage } from '../../server/storage/storage.js'

export const edit = (doc: Y.Doc, f: (text: Y.Text) => void): Uint8Array => {
  const before = Y.encodeStateVector(doc)
  f(doc.getText('t'))
  return Y.encodeStateAsUpdate(doc, before)
}

export const textOf = (updates: readonly Uint8Array[]): string => {
  const doc = new Y.Doc()
  for (const u of updates) Y.applyUpdate(doc, u)
  return doc.getText('t').toString()
}

/**
 * The behaviour every Storage must have. Each implementation's test file calls this with a factory that
 * gives a fresh, empty storage; `unique` makes room names that no other run uses.
 */
export const storageContract = (name: string, open: () => Promise<Storage>, unique: (room: string) => string = (r) => r): void => {
  describe(`${name} storage contract`, () => {
    let storage: Storage
    before(async () => { storage = await open() })
    after(async () => { await storage.close() })

    it('loads an unknown room as empty', async () => {
      const room = unique('unknown')
      assert.deepEqual(await storage.load(room), { updates: [], logRows: 0, seq: 0 })
      assert.equal(await storage.has(room), false)
    })

    it('returns appended updates in commit order, per room', async () => {
      const [a, b] = [unique('order-a'), unique('order-b')]
      const doc = new Y.Doc()
      const u1 = edit(doc, (t) => t.insert(0, 'one '))
      const u2 = edit(doc, (t) => t.insert(4, 'two'))
      await storage.append([{ room: a, update: u1 }, { room: b, update: u2 }])
      await storage.append([{ room: a, update: u2 }])
      const loaded = await storage.load(a)
      assert.equal(loaded.logRows, 2)
      assert.deepEqual(loaded.updates.map((u) => Buffer.from(u)), [Buffer.from(u1), Buffer.from(u2)])
      assert.equal(textOf((await storage.load(b)).updates), '')
      assert.equal(await storage.has(a), true)
    })

    it('compacts the log into a snapshot that holds the same document', async () => {
      const room = unique('compact')
      const doc = new Y.Doc()
      const updates = []
      for (let i = 0; i < 50; i++) updates.push(edit(doc, (t) => t.insert(t.length, `${i},`)))
      updates.push(edit(doc, (t) => t.delete(0, 10)))
      for (const update of updates) await storage.append([{ room, update }])
      await storage.compact(room)
      const loaded = await storage.load(room)
      assert.equal(loaded.logRows, 0)
      assert.equal(loaded.updates.length, 1)
      assert.equal(textOf(loaded.updates), doc.getText('t').toString())
      const later = edit(doc, (t) => t.insert(0, '>'))
      await storage.append([{ room, update: later }])
      const again = await storage.load(room)
      assert.equal(again.logRows, 1)
      assert.equal(textOf(again.updates), doc.getText('t').toString())
      await storage.compact(room)
      assert.equal(textOf((await storage.load(room)).updates), doc.getText('t').toString())
    })

    it('keeps updates whose dependencies are missing through compaction', async () => {
      const room = unique('pending')
      const doc = new Y.Doc()
      const first = edit(doc, (t) => t.insert(0, 'abc'))
      const second = edit(doc, (t) => t.insert(3, 'def'))
      await storage.append([{ room, update: second }])
      await storage.compact(room)
      await storage.append([{ room, update: first }])
      await storage.compact(room)
      assert.equal(textOf((await storage.load(room)).updates), 'abcdef')
    })

    it('keeps what is appended while compactions of the same room run, however they overlap', async () => {
      const room = unique('overlap')
      const doc = new Y.Doc()
      for (let i = 0; i < 20; i++) await storage.append([{ room, update: edit(doc, (t) => t.insert(t.length, `a${i},`)) }])
      const first = storage.compact(room)
      await storage.append([{ room, update: edit(doc, (t) => t.insert(0, 'b,')) }])
      const second = storage.compact(room)
      await storage.append([{ room, update: edit(doc, (t) => t.delete(0, 2)) }])
      const third = storage.compact(room)
      await storage.append([{ room, update: edit(doc, (t) => t.insert(t.length, 'c')) }])
      await Promise.all([first, second, third])
      assert.equal(textOf((await storage.load(room)).updates), doc.getText('t').toString())
      await storage.compact(room)
      const loaded = await storage.load(room)
      assert.equal(loaded.logRows, 0)
      assert.equal(textOf(loaded.updates), doc.getText('t').toString())
    })

    it('commits a batch of many rooms at once', async () => {
      const doc = new Y.Doc()
      const update = edit(doc, (t) => t.insert(0, 'x'))
      const rooms = Array.from({ length: 20 }, (_, i) => unique(`batch-${i}`))
      await storage.append(rooms.map((room) => ({ room, update })))
      for (const room of rooms) assert.equal(textOf((await storage.load(room)).updates), 'x')
    })

    it('answers its health check', async () => {
      await storage.check()
    })
  })
}
