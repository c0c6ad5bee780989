/**
 * Applying stored updates so that one that throws costs only itself. A room must load with everything
 * else its log holds, and a commit must be answered and broadcast, whatever one update does to Yjs.
 *
 * Yjs can throw in two places. While applying an update (a malformed one): the update is skipped and the
 * transaction goes on with the next. While finishing the transaction (collecting deleted content,
 * observers): then Yjs leaves the transaction in its list of unfinished ones, and the document never ends
 * a transaction again (no update event, nothing broadcast); the list is emptied so that it does.
 *
 * Deleting a type collects its content recursively, a few stack frames per level, so deleting types
 * nested thousands deep (stored before MAX_NESTING_DEPTH was enforced) would overflow the stack there:
 * `collectDeepTypes`, the documents' gcFilter, collects such content without recursion first.
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { deepTypeItems, MAX_NESTING_DEPTH } from './nesting.js'

/**
 * The documents' gcFilter. Yjs collects a deleted type's content recursively, a few stack frames per
 * level: for a type whose content nests deeper than MAX_NESTING_DEPTH, the nested types are collected
 * here first, innermost first, so that Yjs's recursion is shallow. If some of them is not deleted (it
 * cannot be, inside a deleted type, but this is stored data), the type is kept uncollected instead.
 */
export const collectDeepTypes = (item: Y.Item): boolean => {
  if (!(item.content instanceof Y.ContentType)) return true
  const nested = deepTypeItems(item.content.type, MAX_NESTING_DEPTH)
  if (nested === null) return true
  if (nested.some((inner) => !inner.deleted || inner.keep)) return false
  const store = item.content.type.doc?.store
  if (store === undefined) return false
  for (let i = nested.length - 1; i >= 0; i--) nested[i]!.gc(store, true)
  return true
}

/**
 * Deletes what is left of the content of every type `transaction` deleted, innermost first. Yjs deletes a
 * type's content recursively, marking each item before it goes down a level: when the stack overflows
 * half-way down (types nested thousands deep, stored before MAX_NESTING_DEPTH), the outer items are
 * deleted and the inner ones not, which no encoding of the document can express (a client applying it
 * overflows in turn). Finished here, the delete is what it would have been on a deeper stack.
 */
const finishDeletes = (transaction: Y.Transaction): void => {
  const { store } = transaction.doc
  const ranges = [...transaction.deleteSet.clients].flatMap(([client, items]) => items.map(({ clock, len }) => ({ client, clock, len })))
  for (const { client, clock, len } of ranges) {
    const structs = store.clients.get(client) ?? []
    for (let i = Y.findIndexSS(structs, clock); i < structs.length && structs[i]!.id.clock < clock + len; i++) {
      const item = structs[i]!
      if (!(item instanceof Y.Item) || !item.deleted || !(item.content instanceof Y.ContentType)) continue
      const types = [item.content.type]
      for (let t = 0; t < types.length; t++) eachChild(types[t]!, (child) => { if (child.content instanceof Y.ContentType) types.push(child.content.type) })
      for (let t = types.length - 1; t >= 0; t--) eachChild(types[t]!, (child) => { if (!child.deleted) child.delete(transaction) })
    }
  }
}

const eachChild = (type: Y.AbstractType<unknown>, visit: (item: Y.Item) => void): void => {
  for (let item = type._start; item !== null; item = item.right) visit(item)
  for (const last of type._map.values()) for (let item: Y.Item | null = last; item !== null; item = item.left) visit(item)
}

/**
 * Applies `updates` to `doc` in one transaction of `origin`. `skipped` hears of each that threw, by index,
 * and of a throw while the transaction finished (index null), which no one update can be blamed for.
 */
export const applyStored = (
  doc: Y.Doc,
  updates: readonly Uint8Array[],
  origin: unknown,
  skipped: (index: number | null, error: unknown) => void,
): void => {
  try {
    doc.transact((transaction) => {
      updates.forEach((update, index) => {
        try {
          Y.applyUpdate(doc, update)
        } catch (error) {
          finishDeletes(transaction)
          skipped(index, error)
        }
      })
    }, origin)
  } catch (error) {
    doc._transactionCleanups = []
    skipped(null, error)
  }
}

/**
 * The state vector of `doc` with each client the updates hold set back to where their structs start: the
 * state from which an encoding of the document holds all of them.
 */
export const stateBefore = (doc: Y.Doc, updates: readonly Uint8Array[]): Uint8Array => {
  const state = Y.decodeStateVector(Y.encodeStateVector(doc))
  for (const update of updates) {
    for (const [client, clock] of Y.parseUpdateMeta(update).from) state.set(client, Math.min(clock, state.get(client) ?? clock))
  }
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, state.size)
  for (const [client, clock] of state) {
    encoding.writeVarUint(encoder, client)
    encoding.writeVarUint(encoder, clock)
  }
  return encoding.toUint8Array(encoder)
}
