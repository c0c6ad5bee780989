import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { SyncError } from '../../server/errors.js'
import { admitUpdate, validateUpdate } from '../../server/update-admission.js'
import { forgedItem } from '../helpers/updates.js'

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

  it('accepts the 53-bit client ids of Yjs 14, in structs, origins and delete sets', () => {
    for (const clientID of [2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const doc = new Y.Doc()
      doc.clientID = clientID
      doc.getText('t').insert(0, 'hello')
      doc.getText('t').insert(2, 'xy')
      doc.getText('t').delete(0, 1)
      const decoded = validateUpdate(Y.encodeStateAsUpdate(doc))
      assert.ok(decoded.structs.every((struct) => struct.id.client === clientID))
      assert.deepEqual([...decoded.ds.clients.keys()], [clientID])
    }
  })

  it('refuses client ids past 2^53 - 1 and clocks past 2^30', () => {
    // lib0 reads a varuint's last byte unchecked: 2^53 and 2^56 - 1 decode, but not as exact numbers
    for (const client of [[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]]) {
      // one client, one struct from clock 0: the string "x" at the start of root type "t"
      const update = new Uint8Array([1, 1, ...client, 0, 4, 1, 1, 0x74, 1, 0x78, 0])
      assert.ok(Y.decodeUpdate(update).structs[0]!.id.client > Number.MAX_SAFE_INTEGER)
      assert.throws(() => validateUpdate(update), (error) => badUpdate(error) && /out-of-range id/.test((error as Error).message))
      // no structs; the same client deletes clock 0
      const deletion = new Uint8Array([0, 1, ...client, 1, 0, 1])
      assert.throws(() => validateUpdate(deletion), (error) => badUpdate(error) && /deletes an out-of-range id/.test((error as Error).message))
    }
    // client 5 deletes 3 items starting at clock 2^31
    const hugeClock = new Uint8Array([0, 1, 5, 1, 0x80, 0x80, 0x80, 0x80, 0x08, 3])
    assert.doesNotThrow(() => Y.decodeUpdate(hugeClock))
    assert.throws(() => validateUpdate(hugeClock), badUpdate)
  })

  it('refuses an update that lists one client in two places', () => {
    // two runs of structs for client 5, both from clock 0: "x" and "y" at the start of root type "t"
    const run = (char: number): number[] => [1, 5, 0, 4, 1, 1, 0x74, 1, char]
    const update = new Uint8Array([2, ...run(0x78), ...run(0x79), 0])
    assert.equal(Y.decodeUpdate(update).structs.length, 2)
    assert.throws(() => validateUpdate(update), (error) => badUpdate(error) && /lists a client twice/.test((error as Error).message))
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

/** What `change` adds to `doc`, as one update. */
const edit = (doc: Y.Doc, change: (doc: Y.Doc) => void): Uint8Array => {
  const before = Y.encodeStateVector(doc)
  change(doc)
  return Y.encodeStateAsUpdate(doc, before)
}

/** A document of one client, with `edit` applied: its whole state as one update. */
const madeBy = (client: number, edit: (doc: Y.Doc) => void, base?: Uint8Array): Uint8Array => {
  const doc = new Y.Doc()
  if (base !== undefined) Y.applyUpdate(doc, base)
  // Set after the base: Yjs picks a new id for a document that receives content under its own.
  doc.clientID = client
  edit(doc)
  return base === undefined ? Y.encodeStateAsUpdate(doc) : Y.encodeStateAsUpdate(doc, Y.encodeStateVectorFromUpdate(base))
}

/** A room's document, a peer fed the room's update events (what the server broadcasts), and a late joiner. */
const room = (): { doc: Y.Doc, peer: Y.Doc, late: () => Y.Doc } => {
  const doc = new Y.Doc()
  const peer = new Y.Doc()
  doc.on('update', (update: Uint8Array) => Y.applyUpdate(peer, update))
  return {
    doc,
    peer,
    late: () => {
      const late = new Y.Doc()
      Y.applyUpdate(late, Y.encodeStateAsUpdate(doc))
      return late
    },
  }
}

const shape = (doc: Y.Doc): unknown => ({ meta: doc.getMap('meta').toJSON(), list: doc.getArray('list').toJSON(), text: doc.getText('text').toString() })

/** Found by the fuzzer: updates Yjs applies, after which the room's document and its encodings differ. */
describe('admitUpdate', () => {
  const none = new Map<number, number>()
  const admitted = (doc: Y.Doc, update: Uint8Array, queued = none): Uint8Array => {
    const admission = admitUpdate(doc, update, queued)
    assert.ok(typeof admission !== 'string', `admitted, not ${String(admission)}`)
    return admission.update
  }

  it('refuses with CONFLICTING_UPDATE a struct that reuses ids the room holds for other content', () => {
    // The room holds client 7's clock 0: meta.k = 1. A forged update reuses clock 0 and adds clock 1: "ab" in text.
    const stored = madeBy(7, (doc) => doc.getMap('meta').set('k', 1))
    const forged = madeBy(7, (doc) => doc.getText('text').insert(0, 'ab'))
    const unchecked = room()
    Y.applyUpdate(unchecked.doc, stored)
    Y.applyUpdate(unchecked.doc, forged)
    assert.notDeepEqual(shape(unchecked.peer), shape(unchecked.doc), 'as sent, the update splits the room from its peers')

    const { doc, peer, late } = room()
    Y.applyUpdate(doc, admitted(doc, stored))
    assert.throws(() => admitUpdate(doc, forged, none), (error) => error instanceof SyncError && error.code === 'CONFLICTING_UPDATE' && error.closeCode === 4409)
    // The same ids with the same content are a resend, not a conflict.
    assert.equal(admitUpdate(doc, stored, none), 'known')
    assert.deepEqual(shape(doc), { meta: { k: 1 }, list: [], text: '' })
    assert.deepEqual(shape(peer), shape(doc))
    assert.deepEqual(shape(late()), shape(doc))
  })

  it('cuts a resent struct that starts inside content the room holds, and claims only the rest', () => {
    const writer = new Y.Doc()
    writer.clientID = 7
    const first = edit(writer, (d) => d.getText('text').insert(0, 'a😀'))
    const second = edit(writer, (d) => d.getText('text').insert(3, 'bc'))
    const { doc, peer, late } = room()
    const admission = admitUpdate(doc, first, none)
    assert.ok(typeof admission !== 'string')
    assert.deepEqual(admission.claims, [{ client: 7, from: 0, to: 3 }])
    Y.applyUpdate(doc, admission.update)
    // A reconnecting client resends both, merged: one struct that starts inside what the room holds.
    const resent = Y.mergeUpdates([first, second])
    const cut = admitUpdate(doc, resent, none)
    assert.ok(typeof cut !== 'string')
    assert.notEqual(cut.update, resent)
    assert.deepEqual(cut.claims, [{ client: 7, from: 3, to: 5 }])
    Y.applyUpdate(doc, cut.update)
    assert.equal(doc.getText('text').toString(), 'a😀bc')
    assert.deepEqual(shape(peer), shape(doc))
    assert.deepEqual(shape(late()), shape(doc))
  })

  it('refuses an update that depends on content the room does not have, and admits it once that content is queued', () => {
    const a = madeBy(1, (doc) => doc.getText('text').insert(0, 'a'))
    const b = madeBy(2, (doc) => doc.getText('text').insert(1, 'b'), a)
    const { doc } = room()
    assert.equal(admitUpdate(doc, b, none), 'incomplete')
    const first = admitUpdate(doc, a, none)
    assert.ok(typeof first !== 'string')
    assert.deepEqual([...first.reach], [[1, 1]])
    admitted(doc, b, new Map(first.reach))
    // A deletion of content the room does not have would be kept pending too.
    const deletesUnknown = madeBy(2, (d) => d.getText('text').delete(0, 1), a)
    assert.equal(admitUpdate(doc, deletesUnknown, none), 'incomplete')
    assert.equal(doc.store.pendingStructs, null)
  })

  it('refuses a struct that would wait for missing content, before a later update can reuse its id: the case the fuzzer found', () => {
    const x = madeBy(5, (doc) => doc.getText('text').insert(0, 'x'))
    const n = madeBy(9, (doc) => doc.getText('text').insert(1, 'n'), x)
    // Client 5's clocks 1-2 go between x and client 9's n, which the room lacks; clocks 3-4 go first.
    const both = Y.mergeUpdates([x, n])
    const waiting = madeBy(5, (doc) => {
      doc.getText('text').insert(1, 'ab')
      doc.getText('text').insert(0, 'cd')
    }, both)
    // Then clocks 1-2 again, other content that the room can place.
    const reused = madeBy(5, (doc) => doc.getText('text').insert(1, 'yz'), x)

    const unchecked = room()
    for (const update of [x, waiting, reused]) Y.applyUpdate(unchecked.doc, update)
    assert.equal(unchecked.doc.getText('text').toString(), 'xyz')
    assert.equal(unchecked.late().getText('text').toString(), 'cdxyz', 'as sent, a late joiner gets clocks 3-4, the room and its peers do not')

    const { doc, peer, late } = room()
    Y.applyUpdate(doc, admitted(doc, x))
    assert.equal(admitUpdate(doc, waiting, none), 'incomplete')
    Y.applyUpdate(doc, admitted(doc, reused))
    assert.equal(doc.store.pendingStructs, null)
    assert.equal(doc.getText('text').toString(), 'xyz')
    assert.deepEqual(shape(peer), shape(doc))
    assert.deepEqual(shape(late()), shape(doc))
  })

  it('refuses an item whose right origin is its origin, lies left of it, or in another parent', () => {
    const { doc } = room()
    Y.applyUpdate(doc, madeBy(1, (d) => {
      d.getText('text').insert(0, 'abcdef')
      d.getArray('list').insert(0, ['x', 'y'])
    }))
    const id = (clock: number): Y.ID => Y.createID(1, clock)
    const refused = (update: Uint8Array, reason: RegExp): void => {
      assert.throws(() => admitUpdate(doc, update, none), (error) => badUpdate(error) && reason.test((error as Error).message))
    }
    refused(forgedItem(2, id(3), id(3), 'X'), /not right of its origin/)
    refused(forgedItem(2, id(4), id(1), 'X'), /not right of its origin/)
    refused(forgedItem(2, id(2), id(6), 'X'), /different parents/)
    // Between neighbours, and around content made concurrently, as real clients do.
    admitted(doc, forgedItem(2, id(2), id(3), 'X'))
    const concurrent = madeBy(3, (d) => d.getText('text').insert(3, 'C'), Y.encodeStateAsUpdate(doc))
    Y.applyUpdate(doc, admitted(doc, concurrent))
    admitted(doc, forgedItem(2, id(2), id(3), 'X'))
  })
  /**
   * One struct ("x" in text) for each of `clients` clients. Each names as its origin the struct of the
   * client listed after it, so every struct waits for one that comes later in the update; the last one
   * names `lastOrigin` (a client of the list: a cycle; another: content nobody sent), or the text itself.
   */
  const chain = (clients: readonly number[], lastOrigin: number | null = null): Uint8Array => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, clients.length)
    clients.forEach((client, i) => {
      const origin = i + 1 < clients.length ? clients[i + 1]! : lastOrigin
      encoding.writeVarUint(encoder, 1)
      encoding.writeVarUint(encoder, client)
      encoding.writeVarUint(encoder, 0)
      if (origin !== null) {
        encoding.writeUint8(encoder, 0x80 | 4) // an origin, then ContentString
        encoding.writeVarUint(encoder, origin)
        encoding.writeVarUint(encoder, 0)
      } else {
        encoding.writeUint8(encoder, 4) // no origin: the parent follows, the root type "text"
        encoding.writeVarUint(encoder, 1)
        encoding.writeVarString(encoder, 'text')
      }
      encoding.writeVarString(encoder, 'x')
    })
    encoding.writeVarUint(encoder, 0) // no deletions
    return encoding.toUint8Array(encoder)
  }

  it('admits 100,000 structs that each wait for the next client\'s, checking each a bounded number of times', () => {
    // A pass over every waiting struct per struct integrated took 3.4 s for 8,000 of these, and would take
    // minutes here (past the test timeout).
    const clients = Array.from({ length: 100_000 }, (_, i) => 1000 + i)
    const update = chain(clients)
    const doc = new Y.Doc()
    Y.applyUpdate(doc, admitted(doc, update))
    assert.equal(doc.getText('text').length, clients.length)
    assert.equal(doc.store.pendingStructs, null)
  })

  it('finds a chain of waiting structs that closes on itself, or ends in content nobody sent: nothing of it is stored', () => {
    const clients = [10, 11, 12, 13]
    assert.equal(admitUpdate(new Y.Doc(), chain(clients, 10), none), 'incomplete')
    assert.equal(admitUpdate(new Y.Doc(), chain(clients, 99), none), 'incomplete')
    assert.ok(typeof admitUpdate(new Y.Doc(), chain(clients), none) !== 'string')
  })
})
