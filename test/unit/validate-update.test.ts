import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { SyncError } from '../../server/errors.js'
import { validateUpdate } from '../../server/update-validation.js'

const badUpdate = (error: unknown): boolean => error instanceof SyncError && error.code === 'BAD_UPDATE'

/** Updates the fuzzer found: Yjs decodes them, then throws half-way through applying them. */
describe('validateUpdate', () => {
  it('refuses a delete range of length 0', () => {
    // no structs; delete set: client 5, one range at clock 0 of length 0
    const update = new Uint8Array([0, 1, 5, 1, 0, 0])
    assert.doesNotThrow(() => Y.decodeUpdate(update))
    assert.throws(() => Y.applyUpdate(new Y.Doc(), update))
    assert.throws(() => validateUpdate(update), badUpdate)
  })

  it('refuses an item whose left neighbour is a later item of its own client', () => {
    // client 5, clock 0: a string "x" whose origin is (5, 3); empty delete set
    const update = new Uint8Array([1, 1, 5, 0, 0x84, 5, 3, 1, 0x78, 0])
    assert.doesNotThrow(() => Y.decodeUpdate(update))
    assert.throws(() => Y.applyUpdate(new Y.Doc(), update))
    assert.throws(() => validateUpdate(update), badUpdate)
  })

  it('refuses client ids past 32 bits and clocks past 2^30', () => {
    const big = new Y.Doc()
    big.clientID = 2 ** 32 + 5
    big.getText('t').insert(0, 'x')
    assert.throws(() => validateUpdate(Y.encodeStateAsUpdate(big)), badUpdate)
    // client 5 deletes 3 items starting at clock 2^31
    const hugeClock = new Uint8Array([0, 1, 5, 1, 0x80, 0x80, 0x80, 0x80, 0x08, 3])
    assert.doesNotThrow(() => Y.decodeUpdate(hugeClock))
    assert.throws(() => validateUpdate(hugeClock), badUpdate)
  })

  it('accepts what real documents produce', () => {
    const doc = new Y.Doc()
    const updates: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => updates.push(u))
    const text = doc.getText('t')
    text.insert(0, 'hello world')
    text.delete(2, 3)
    text.insert(4, 'abc')
    doc.getArray('a').push([1, 2, 3])
    doc.getArray('a').delete(0, 2)
    doc.getMap('m').set('k', new Y.Text('nested'))
    for (const update of [...updates, Y.encodeStateAsUpdate(doc)]) validateUpdate(update)
  })
})
