import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { MemoryStorage } from '../../server/storage/memory.js'
import { SqliteStorage } from '../../server/storage/sqlite.js'
import { mergeToSnapshot } from '../../server/storage/storage.js'
import { edit, storageContract, textOf } from './storage-contract.js'
import { sequenceContract } from './storage-sequence-contract.js'
import * as Y from 'yjs'

const dir = mkdtempSync(join(tmpdir(), 'sqlite-contract-'))
after(() => rmSync(dir, { recursive: true, force: true }))

storageContract('memory', async () => new MemoryStorage())
sequenceContract('memory', async () => new MemoryStorage())
storageContract('sqlite', async () => new SqliteStorage({ file: join(dir, 'rooms.sqlite') }))

describe('mergeToSnapshot', () => {
  it('garbage-collects deleted content', () => {
    const doc = new Y.Doc()
    const updates = [edit(doc, (t) => t.insert(0, 'x'.repeat(10_000))), edit(doc, (t) => t.delete(0, 9_990))]
    const merged = mergeToSnapshot(updates)
    assert.ok(merged.length < 200, `snapshot is ${merged.length} bytes`)
    assert.equal(textOf([merged]), 'x'.repeat(10))
  })
})

describe('sqlite compaction', () => {
  it('merges on a worker thread: the event loop keeps turning while a big room compacts', async () => {
    const storage = new SqliteStorage({ file: join(dir, 'worker.sqlite') })
    try {
      const doc = new Y.Doc()
      for (let i = 0; i < 200; i++) await storage.append([{ room: 'big', update: edit(doc, (t) => t.insert(t.length, `${i} `.repeat(50))) }])
      let turned = false
      setImmediate(() => { turned = true })
      await storage.compact('big')
      assert.equal(turned, true, 'an immediate ran before the compaction finished')
      const loaded = await storage.load('big')
      assert.equal(loaded.logRows, 0)
      assert.equal(textOf(loaded.updates), doc.getText('t').toString())
    } finally {
      await storage.close()
    }
  })
})
