import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { SyncError } from '../../server/errors.js'
import { checkNesting, MAX_NESTING_DEPTH } from '../../server/nesting.js'
import { nestedMaps } from '../helpers/updates.js'

const tooDeep = (error: unknown): boolean => error instanceof SyncError && error.code === 'BAD_UPDATE' && /deeper than/.test(error.message)

describe('checkNesting', () => {
  it('counts the root type as level 1 and each type inside one level more, in one update or across the document', () => {
    const { levels, whole } = nestedMaps(MAX_NESTING_DEPTH)
    // MAX_NESTING_DEPTH maps under the root map: one level too many.
    assert.throws(() => checkNesting(new Y.Doc(), Y.decodeUpdate(whole), 0), tooDeep)
    const allowed = Y.mergeUpdates(levels.slice(0, -1))
    assert.equal(checkNesting(new Y.Doc(), Y.decodeUpdate(allowed), 0), MAX_NESTING_DEPTH)
    const doc = new Y.Doc()
    Y.applyUpdate(doc, allowed)
    assert.throws(() => checkNesting(doc, Y.decodeUpdate(levels.at(-1)!), 0), tooDeep)
    // Content that is no type may go into the deepest type.
    const writer = new Y.Doc()
    Y.applyUpdate(writer, allowed)
    let deepest = writer.getMap('root')
    for (let next = deepest.get('k'); next instanceof Y.Map; next = next.get('k')) deepest = next
    const before = Y.encodeStateVector(writer)
    deepest.set('leaf', 'text')
    assert.equal(checkNesting(doc, Y.decodeUpdate(Y.encodeStateAsUpdate(writer, before)), 0), MAX_NESTING_DEPTH + 1)
  })

  it('takes content still waiting for its commit at the deepest level queued', () => {
    const { levels } = nestedMaps(3)
    // Level 2 refers to level 1, which only a queued update holds.
    assert.equal(checkNesting(new Y.Doc(), Y.decodeUpdate(levels[1]!), 2), 3)
    assert.throws(() => checkNesting(new Y.Doc(), Y.decodeUpdate(levels[1]!), MAX_NESTING_DEPTH), tooDeep)
  })

  it('counts XML elements as types', () => {
    const doc = new Y.Doc()
    let element: Y.XmlFragment = doc.getXmlFragment('prosemirror')
    doc.transact(() => {
      for (let i = 0; i < MAX_NESTING_DEPTH; i++) {
        const inner = new Y.XmlElement('blockquote')
        element.insert(0, [inner])
        element = inner
      }
    })
    assert.throws(() => checkNesting(new Y.Doc(), Y.decodeUpdate(Y.encodeStateAsUpdate(doc)), 0), tooDeep)
  })

  it('resolves a long chain of items each placed by the one before, without recursion, in little time', () => {
    // 12,000 items of two clients typing in turn: each item's origin is the other client's last item.
    const a = new Y.Doc()
    const b = new Y.Doc()
    a.clientID = 1
    b.clientID = 2
    const updates: Uint8Array[] = []
    a.on('update', (update: Uint8Array) => { updates.push(update); Y.applyUpdate(b, update) })
    b.on('update', (update: Uint8Array, origin: unknown) => { if (origin !== null) return; updates.push(update); Y.applyUpdate(a, update) })
    const map = a.getMap('root')
    map.set('t', new Y.Text())
    for (let i = 0; i < 6_000; i++) {
      (a.getMap('root').get('t') as Y.Text).insert(2 * i, 'a');
      (b.getMap('root').get('t') as Y.Text).insert(2 * i + 1, 'b')
    }
    const update = Y.encodeStateAsUpdate(a)
    const decoded = Y.decodeUpdate(update)
    assert.ok(decoded.structs.length > 10_000)
    const started = performance.now()
    assert.equal(checkNesting(new Y.Doc(), decoded, 0), 3)
    assert.ok(performance.now() - started < 1000, `${(performance.now() - started).toFixed(0)} ms`)
  })
})
