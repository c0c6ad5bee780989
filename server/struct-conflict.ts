/**
 * Whether an update reuses ids the room holds for other content. A Yjs id (client, clock) names one
 * struct for ever: an honest client that resends content sends the same structs, while two documents
 * sharing a client id (a forged update, or a client copied with its id) make different structs under the
 * same ids. Yjs keeps the first it sees and ignores the other, so the sender of the other never agrees
 * with the room again. Such an update is refused (CONFLICTING_UPDATE), whichever instance admits it.
 */
import * as Y from 'yjs'
import { SyncError } from './errors.js'
import type { DecodedUpdate } from './update-admission.js'

type Struct = DecodedUpdate['structs'][number]

const sameId = (a: Y.ID | null, b: Y.ID | null): boolean => Y.compareIDs(a, b)

/** The left origin of the part of `item` that starts at clock `at`: a split keeps its left part as origin. */
const originAt = (item: Y.Item, at: number): Y.ID | null => at === item.id.clock ? item.origin : Y.createID(item.id.client, at - 1)

/** Whether the parent an update names (a root type's key or the id of the type's item) is `held`'s. */
const sameParent = (sent: Y.Item, held: Y.Item): boolean => {
  const parent = sent.parent as unknown
  const heldParent = held.parent as Y.AbstractType<unknown> | null
  if (heldParent === null || sent.parentSub !== held.parentSub) return false
  if (typeof parent === 'string') return heldParent._item === null && Y.findRootTypeKey(heldParent) === parent
  if (parent instanceof Y.ID) return heldParent._item !== null && sameId(heldParent._item.id, parent)
  return true
}

/**
 * Whether two runs of text are the same, where Yjs may have replaced half of a surrogate pair by U+FFFD
 * (it does when it splits an item between the two halves, and the halves then stay apart).
 */
const sameText = (a: string, b: string): boolean => {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && a[i] !== '\ufffd' && b[i] !== '\ufffd') return false
  }
  return true
}

/** Whether the content of `sent` and `held` is the same over clocks `from` to `to`. */
const sameContent = (sent: Y.Item, held: Y.Item, from: number, to: number): boolean => {
  const a = sent.content
  const b = held.content
  // Deleted content is gone from the room (garbage-collected): nothing is left to compare.
  if (held.deleted || a instanceof Y.ContentDeleted || b instanceof Y.ContentDeleted) return true
  if (a.constructor !== b.constructor) return false
  const aFrom = from - sent.id.clock
  const bFrom = from - held.id.clock
  const length = to - from
  if (a instanceof Y.ContentString && b instanceof Y.ContentString) return sameText(a.str.slice(aFrom, aFrom + length), b.str.slice(bFrom, bFrom + length))
  if (a instanceof Y.ContentType && b instanceof Y.ContentType) return a.type.constructor === b.type.constructor
  if (a instanceof Y.ContentDoc && b instanceof Y.ContentDoc) return a.doc?.guid === b.doc?.guid
  if (a instanceof Y.ContentFormat && b instanceof Y.ContentFormat) return a.key === b.key && JSON.stringify(a.value) === JSON.stringify(b.value)
  if (a instanceof Y.ContentBinary && b instanceof Y.ContentBinary) return Buffer.compare(a.content, b.content) === 0
  return JSON.stringify(a.getContent().slice(aFrom, aFrom + length)) === JSON.stringify(b.getContent().slice(bFrom, bFrom + length))
}

/**
 * Throws CONFLICTING_UPDATE if a struct of the update lies, in whole or in part, on a struct of `doc` that
 * differs from it: other content, or other neighbours or parent at insertion. Parts of the room that are
 * garbage-collected cannot be compared and pass. Costs one lookup per struct, and a comparison only for
 * the parts the room holds already (a resend).
 */
export const checkSameStructs = (doc: Y.Doc, structs: readonly Struct[]): void => {
  for (const sent of structs) {
    if (!(sent instanceof Y.Item)) continue
    const { client, clock } = sent.id
    const end = Math.min(clock + sent.length, Y.getState(doc.store, client))
    if (clock >= end) continue
    const known = doc.store.clients.get(client)!
    for (let i = Y.findIndexSS(known, clock); i < known.length && known[i]!.id.clock < end; i++) {
      const held = known[i]!
      if (!(held instanceof Y.Item)) continue
      const from = Math.max(clock, held.id.clock)
      const to = Math.min(end, held.id.clock + held.length)
      const same = sameId(originAt(sent, from), originAt(held, from)) && sameId(sent.rightOrigin, held.rightOrigin) &&
        (sent.parent === null || sameParent(sent, held)) && sameContent(sent, held, from, to)
      if (!same) throw new SyncError('CONFLICTING_UPDATE', `update holds other content under ids the room holds (client ${client}, clock ${from})`)
    }
  }
}
