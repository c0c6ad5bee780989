import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { addsNothing, validateUpdate } from '../../server/update-admission.js'
import { SyncError } from '../../server/errors.js'

const diff = (doc: Y.Doc, change: () => void): Uint8Array => {
  const before = Y.encodeStateVector(doc)
  change()
  return Y.encodeStateAsUpdate(doc, before)
}

describe('addsNothing', () => {
  const server = new Y.Doc()
  const client = new Y.Doc()
  const text = client.getText('text')
  const sync = (update: Uint8Array): void => Y.applyUpdate(server, update)
  sync(diff(client, () => text.insert(0, 'hello world')))

  it('is true for an update the document already holds', () => {
    const update = Y.encodeStateAsUpdate(client)
    assert.equal(addsNothing(server, validateUpdate(update)), true)
  })

  it('is false for new content', () => {
    const update = diff(client, () => text.insert(5, ','))
    assert.equal(addsNothing(server, validateUpdate(update)), false)
    sync(update)
    assert.equal(addsNothing(server, validateUpdate(update)), true)
  })

  it('is false for a deletion of known content the document has not deleted, true once it has', () => {
    const update = diff(client, () => text.delete(0, 3))
    assert.equal(addsNothing(server, validateUpdate(update)), false)
    sync(update)
    assert.equal(addsNothing(server, validateUpdate(update)), true)
    // A reconnecting client's step 2: nothing new, but the whole delete set.
    const step2 = Y.encodeStateAsUpdate(client, Y.encodeStateVector(server))
    assert.equal(addsNothing(server, validateUpdate(step2)), true)
    assert.equal(server.getText('text').toString(), text.toString())
  })

  it('is false for content whose dependencies the document lacks', () => {
    const other = new Y.Doc()
    Y.applyUpdate(other, Y.encodeStateAsUpdate(client))
    diff(other, () => other.getText('text').insert(0, 'a'))
    const second = diff(other, () => other.getText('text').insert(0, 'b'))
    assert.equal(addsNothing(server, validateUpdate(second)), false)
  })

  it('rejects an undecodable update with BAD_UPDATE', () => {
    assert.throws(() => validateUpdate(Uint8Array.of(5, 200, 3, 7, 7, 7)), (e: Error) => e instanceof SyncError && e.code === 'BAD_UPDATE')
  })
})
