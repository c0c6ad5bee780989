import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { MemoryStorage } from '../../server/storage/memory.js'
import { SqliteStorage } from '../../server/storage/sqlite.js'
import { mergeToSnapshot } from '../../server/storage/storage.js'
import { edit, storageContract, textOf } from './storage-contract.js'
import * as Y from 'yjs'

const dir = mkdtempSync(join(tmpdir(), 'sqlite-contract-'))
after(() => rmSync(dir, { recursive: true, force: true }))

storageContract('memory', async () => new MemoryStorage())
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
