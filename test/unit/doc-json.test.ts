import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { docToJson, typesAsText } from '../../server/doc-json.js'

/** A document as the server sees it after a load: built from an update, no type kinds known. */
const loaded = (build: (doc: Y.Doc) => void): Y.Doc => {
  const source = new Y.Doc()
  build(source)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(source))
  source.destroy()
  return doc
}

describe('docToJson', () => {
  it('infers a formatted text as text, even when it starts with a format mark', () => {
    const doc = loaded((d) => {
      d.getText('rich').insert(0, 'bold', { bold: true })
      d.getText('rich').insert(4, ' plain')
    })
    assert.deepEqual(docToJson(doc), { rich: 'bold plain' })
  })

  it('skips deleted content when inferring, and reads a type with nothing left as an empty array', () => {
    const doc = loaded((d) => {
      d.getText('gone').insert(0, 'abc')
      d.getText('gone').delete(0, 3)
      d.getText('partly').insert(0, 'xyz')
      d.getText('partly').delete(0, 1)
    })
    assert.deepEqual(docToJson(doc), { gone: [], partly: 'yz' })
  })

  it('reads nested types inside maps and arrays as JSON', () => {
    const doc = loaded((d) => {
      const inner = new Y.Map<unknown>()
      inner.set('k', 'v')
      d.getArray('list').push([inner, 'x'])
      d.getMap('meta').set('tags', ['a', 'b'])
    })
    assert.deepEqual(docToJson(doc), { list: [{ k: 'v' }, 'x'], meta: { tags: ['a', 'b'] } })
  })

  it('leaves the live document untouched, so its types can still be given any kind', () => {
    const doc = loaded((d) => { d.getText('text').insert(0, 'hi') })
    docToJson(doc)
    assert.equal(doc.share.get('text')?.constructor, Y.AbstractType)
    assert.equal(doc.getText('text').toString(), 'hi')
  })
})

describe('typesAsText', () => {
  it('gives text as a string, other kinds as JSON, and leaves out unknown names', () => {
    const doc = loaded((d) => {
      d.getText('body').insert(0, 'hello')
      d.getMap('meta').set('n', 1)
    })
    assert.deepEqual(typesAsText(doc, ['body', 'meta', 'missing']), { body: 'hello', meta: '{"n":1}' })
  })
})
