/**
 * A structured fuzz of update admission, in process: real documents make edits, the protocol fuzzer's
 * mutators corrupt most of them, and what `admitUpdate` admits is applied to a room's document. After
 * every applied update the room, peers fed the room's update events (what the server broadcasts) and a
 * late joiner (the room's encoding) must hold the same content, and nothing may wait in the room's
 * document; after every update refused as incomplete, Yjs must leave part of it waiting in a copy.
 * Byte-level fuzzing over sockets (fuzz.test.ts) rarely produces updates that Yjs applies; these start
 * from valid ones, so most mutations keep them applicable.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import { SyncError } from '../../server/errors.js'
import * as protocol from '../../server/protocol.js'
import { admitUpdate } from '../../server/update-admission.js'
import { nextFrame } from '../fuzz/fuzz.js'

const content = (doc: Y.Doc): string => JSON.stringify({
  text: doc.getText('text').toDelta(),
  meta: Object.entries(doc.getMap('meta').toJSON()).sort(([a], [b]) => a < b ? -1 : 1),
  list: doc.getArray('list').toJSON(),
  xml: doc.getXmlFragment('xml').toString(),
})

/** One random edit of `doc`; returns the updates it made. */
const edit = (rng: prng.PRNG, doc: Y.Doc): Uint8Array[] => {
  const updates: Uint8Array[] = []
  const record = (update: Uint8Array): void => { updates.push(update) }
  doc.on('update', record)
  const text = doc.getText('text')
  const list = doc.getArray('list')
  const xml = doc.getXmlFragment('xml')
  switch (prng.int32(rng, 0, 6)) {
    case 0: text.insert(prng.int32(rng, 0, text.length), prng.word(rng, 1, 5)); break
    case 1: if (text.length > 2) text.delete(prng.int32(rng, 0, text.length - 2), prng.int32(rng, 1, 2)); else text.insert(0, 'ab'); break
    case 2: text.format(0, Math.min(3, text.length), { bold: prng.bool(rng) }); break
    case 3: doc.getMap('meta').set(prng.word(rng, 1, 2), prng.oneOf(rng, [1, 'two', null, { n: [1] }])); break
    case 4: list.insert(prng.int32(rng, 0, list.length), [prng.int32(rng, 0, 9), new Y.Map()]); break
    case 5: if (list.length > 0) list.delete(0, 1); else list.push([1]); break
    default: xml.insert(prng.int32(rng, 0, xml.length), [new Y.XmlElement('p')]); break
  }
  doc.off('update', record)
  return updates
}

interface Counts { refused: number, known: number, incomplete: number, cut: number, applied: number }

const fuzzAdmission = (seed: number, steps: number): Counts => {
  const rng = prng.create(seed)
  const room = new Y.Doc()
  // Ids no author uses: Yjs gives a document that receives content under its own id a random new one.
  const peers = [900_001, 900_002, 900_003].map((id) => {
    const doc = new Y.Doc()
    doc.clientID = id
    return doc
  })
  room.on('update', (update: Uint8Array) => { for (const peer of peers) Y.applyUpdate(peer, update) })
  const counts: Counts = { refused: 0, known: 0, incomplete: 0, cut: 0, applied: 0 }
  const recent: Uint8Array[] = []
  const none = new Map<number, number>()
  for (let step = 0; step < steps; step++) {
    // An edit made on a copy of a peer's document, so that only the room decides what peers end up with;
    // by one of three writers, or under an id of its own.
    const author = new Y.Doc()
    Y.applyUpdate(author, Y.encodeStateAsUpdate(prng.oneOf(rng, peers)))
    author.clientID = prng.oneOf(rng, [1, 2, 3, prng.uint32(rng, 4, 1000)])
    const made = edit(rng, author)
    // Also resent with an earlier update, as a client resends after a reconnect.
    const corpus = [...made, ...(recent.length > 0 ? [Y.mergeUpdates([prng.oneOf(rng, recent), ...made])] : [])]
      .map((update) => protocol.encodeSyncUpdate(update))
    if (corpus.length === 0) continue
    const message = (() => {
      try { return protocol.decodeMessage(nextFrame(rng, corpus)) } catch { return null }
    })()
    if (message === null || (message.type !== 'sync-update' && message.type !== 'sync-step2')) continue
    let admission
    try {
      admission = admitUpdate(room, message.update, none)
    } catch (error) {
      // Writers 1-3 reuse their ids on copies that lack their latest content: different structs, same ids.
      assert.ok(error instanceof SyncError && (error.code === 'BAD_UPDATE' || error.code === 'CONFLICTING_UPDATE'), `step ${step}: ${String(error)}`)
      counts.refused++
      continue
    }
    if (typeof admission === 'string') {
      counts[admission]++
      if (admission === 'incomplete') {
        // Yjs agrees: applied to a copy of the room, part of it would wait for content nobody sent.
        const copy = new Y.Doc()
        Y.applyUpdate(copy, Y.encodeStateAsUpdate(room))
        Y.applyUpdate(copy, message.update)
        assert.ok(copy.store.pendingStructs !== null || copy.store.pendingDs !== null, `step ${step}: refused as incomplete, but Yjs integrates all of it`)
      }
      continue
    }
    if (admission.update !== message.update) counts.cut++
    counts.applied++
    recent.push(admission.update)
    Y.applyUpdate(room, admission.update)
    assert.equal(room.store.pendingStructs, null, `step ${step}: structs wait in the room`)
    assert.equal(room.store.pendingDs, null, `step ${step}: deletions wait in the room`)
    const late = new Y.Doc()
    Y.applyUpdate(late, Y.encodeStateAsUpdate(room))
    const expected = content(room)
    assert.equal(content(late), expected, `step ${step}: a late joiner differs from the room`)
    for (const p of peers) assert.equal(content(p), expected, `step ${step}: peer ${p.clientID} differs from the room`)
  }
  return counts
}

describe('update admission under structured fuzzing', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: 4,000 edits, most mutated: the room, its peers and a late joiner agree after every admitted one`, () => {
      const counts = fuzzAdmission(seed, 4000)
      process.stdout.write(`# seed ${seed}: ${JSON.stringify(counts)}\n`)
      assert.ok(counts.applied > 50, 'enough updates were applied to mean something')
      assert.ok(counts.refused > 0 && counts.incomplete > 0, 'mutations reached both refusals')
    })
  }
})
