import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { countSubdocuments } from '../../server/subdocuments.js'
import { subdocumentReferences } from '../helpers/updates.js'

const decodedCount = (update: Uint8Array): number =>
  Y.decodeUpdate(update).structs.filter((struct) => struct instanceof Y.Item && struct.content instanceof Y.ContentDoc).length

describe('countSubdocuments', () => {
  it('counts on the bytes what Yjs decodes, past every kind of content', () => {
    const doc = new Y.Doc()
    const updates: Uint8Array[] = []
    doc.on('update', (update: Uint8Array) => updates.push(update))
    doc.getMap('m').set('a', new Y.Doc())
    doc.getMap('m').set('b', new Y.Doc({ meta: { list: [1, 2, { deep: 'z' }], flag: true } }))
    doc.getArray('list').push([new Y.Doc(), 1, 'two', { three: 3 }, new Uint8Array([1, 2]), null, 2.5])
    doc.getText('t').insert(0, 'hello', { bold: true })
    doc.getText('t').insertEmbed(2, { image: 'x.png' })
    doc.getXmlFragment('x').insert(0, [new Y.XmlElement('p'), new Y.XmlText('q')])
    doc.getMap('m').set('hook', new Y.XmlHook('hook'))
    doc.getMap('m').set('gone', 'x')
    doc.getMap('m').delete('gone')
    doc.getArray('list').delete(1, 2)
    doc.getMap('m').set('nested', new Y.Map([['k', new Y.Doc()]]))
    for (const update of [...updates, Y.encodeStateAsUpdate(doc)]) assert.equal(countSubdocuments(update), decodedCount(update))
    assert.equal(countSubdocuments(Y.encodeStateAsUpdate(doc)), 4)
  })

  it('counts hand-made references, and says -1 for bytes that are not an update', () => {
    assert.equal(countSubdocuments(subdocumentReferences(1000)), 1000)
    assert.equal(countSubdocuments(new Uint8Array([0, 0])), 0)
    assert.equal(countSubdocuments(new Uint8Array([1, 5, 1])), -1)
    assert.equal(countSubdocuments(new Uint8Array([1, 1, 1, 0, 0x1f])), -1)
  })
})
