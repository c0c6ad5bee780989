/**
 * How deep an update nests shared types, checked before it is stored. Yjs deletes and garbage-collects a
 * type's content recursively, a few stack frames per level: a Y.Map nested 2,000 deep (24 KB) overflows
 * the stack when its root entry is deleted, inside the room's transaction, after the delete is stored.
 * Yjs's bookkeeping stays half-done and the room stops working (found by a probe with a write token).
 *
 * An item's depth follows from its parent, and the parent may be a type that an earlier update made: the
 * check reads the depth of the room's types from the document (walking up, remembered for the call), and
 * for content still waiting for its commit it takes the deepest level any queued update reached.
 */
import * as Y from 'yjs'
import { SyncError } from './errors.js'
import type { DecodedUpdate } from './update-admission.js'

/**
 * The deepest a shared type may be nested: a root type is at depth 1, a type inside it at 2, and so on.
 * Real documents stay far below (a rich-text editor nests one level per list or quote), and Yjs recurses
 * safely far above (it overflows near 2,000 from a shallow stack).
 */
export const MAX_NESTING_DEPTH = 256

type Struct = DecodedUpdate['structs'][number]
type Type = Y.AbstractType<unknown>

/**
 * The items of the types nested in `type`, each before the types inside it, or null if none is nested
 * more than `limit` levels below `type` (then Yjs's own recursion is safe). Iterative: there may be
 * thousands of levels.
 */
export const deepTypeItems = (type: Y.AbstractType<unknown>, limit: number): Y.Item[] | null => {
  const items: Y.Item[] = []
  let deep = false
  const stack: Array<{ type: Y.AbstractType<unknown>, level: number }> = [{ type, level: 0 }]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { level } = next
    const visit = (item: Y.Item | null, step: (item: Y.Item) => Y.Item | null): void => {
      for (; item !== null; item = step(item)) {
        if (!(item.content instanceof Y.ContentType)) continue
        if (level + 1 > limit) deep = true
        items.push(item)
        stack.push({ type: item.content.type, level: level + 1 })
      }
    }
    visit(next.type._start, (item) => item.right)
    for (const last of next.type._map.values()) visit(last, (item) => item.left)
  }
  return deep ? items : null
}


/** The depth of a type of the document, remembering every type on the way up in `known`. */
const typeDepth = (type: Type, known: Map<Type, number>): number => {
  const chain: Type[] = []
  let depth = 0
  for (let at: Type | null = type; at !== null;) {
    const seen = known.get(at)
    if (seen !== undefined) {
      depth = seen
      break
    }
    chain.push(at)
    const parent: unknown = at._item?.parent ?? null
    at = parent instanceof Y.AbstractType ? parent : null
  }
  for (let i = chain.length - 1; i >= 0; i--) known.set(chain[i]!, ++depth)
  return depth
}

/**
 * Throws BAD_UPDATE if `decoded` makes a type deeper than MAX_NESTING_DEPTH, on top of `doc` and of
 * queued updates that reach `queuedDepth` at most (see the return value). Returns the deepest level the
 * update reaches: the depth of the types its items are in, plus one. Content the update refers to that is
 * nowhere yet counts as shallow; such an update is refused as incomplete anyway.
 *
 * Each struct's depth is resolved once, without recursion: an update may chain a hundred thousand items,
 * each placed by its neighbour.
 */
export const checkNesting = (doc: Y.Doc, { structs }: DecodedUpdate, queuedDepth: number): number => {
  const types = new Map<Type, number>()
  // The update's structs of each client, in clock order (validateUpdate made sure they are one run).
  const byClient = new Map<number, Struct[]>()
  for (const struct of structs) {
    const run = byClient.get(struct.id.client)
    if (run === undefined) byClient.set(struct.id.client, [struct])
    else run.push(struct)
  }
  const inUpdate = (id: Y.ID): Y.Item | null => {
    const run = byClient.get(id.client)
    if (run === undefined) return null
    let low = 0
    let high = run.length - 1
    while (low <= high) {
      const middle = (low + high) >> 1
      const struct = run[middle]!
      if (id.clock < struct.id.clock) high = middle - 1
      else if (id.clock >= struct.id.clock + struct.length) low = middle + 1
      else return struct instanceof Y.Item ? struct : null
    }
    return null
  }
  /**
   * The depth of the type `id` makes (`ofType`) or is in, when the room holds it or a queued update may;
   * or the item of the update whose depth decides it.
   */
  const lookup = (id: Y.ID, ofType: boolean): number | Y.Item => {
    if (id.clock < Y.getState(doc.store, id.client)) {
      const item = Y.getItem(doc.store, id)
      if (!(item instanceof Y.Item)) return 0
      if (!ofType) return item.parent instanceof Y.AbstractType ? typeDepth(item.parent, types) : 0
      return item.content instanceof Y.ContentType ? typeDepth(item.content.type, types) : 0
    }
    return inUpdate(id) ?? queuedDepth
  }
  /** The depth of the type each of the update's items is in. */
  const depths = new Map<Y.Item, number>()
  const resolving = new Set<Y.Item>()
  const depthOf = (start: Y.Item): number => {
    // Items whose depth is that of `next` plus `step`, innermost last.
    const pending: Array<{ item: Y.Item, step: number }> = []
    let item = start
    let depth: number
    for (;;) {
      const known = depths.get(item)
      if (known !== undefined) {
        depth = known
        break
      }
      const parent = item.parent as unknown
      let source: number | Y.Item
      // An item in a type that an item of the update makes is one level deeper than that item.
      let step = 0
      if (typeof parent === 'string') source = 1
      else if (parent instanceof Y.ID) {
        source = lookup(parent, true)
        if (source instanceof Y.Item) step = 1
      } else {
        const neighbour = item.origin ?? item.rightOrigin
        source = neighbour === null ? 0 : lookup(neighbour, false)
      }
      // A cycle: Yjs leaves such items pending, and the update is refused as incomplete.
      if (source instanceof Y.Item && resolving.has(source)) source = 0
      if (typeof source === 'number') {
        depth = source
        depths.set(item, depth)
        break
      }
      resolving.add(item)
      pending.push({ item, step })
      item = source
    }
    for (let i = pending.length - 1; i >= 0; i--) {
      const { item, step } = pending[i]!
      depth += step
      depths.set(item, depth)
      resolving.delete(item)
    }
    return depths.get(start)!
  }
  let deepest = 0
  for (const struct of structs) {
    if (!(struct instanceof Y.Item)) continue
    const depth = depthOf(struct) + 1
    if (struct.content instanceof Y.ContentType && depth > MAX_NESTING_DEPTH) {
      throw new SyncError('BAD_UPDATE', `update nests shared types deeper than ${MAX_NESTING_DEPTH} levels`)
    }
    deepest = Math.max(deepest, depth)
  }
  return deepest
}

/**
 * Throws BAD_UPDATE if `decoded` deletes a type of `doc` whose content nests more than MAX_NESTING_DEPTH
 * levels below it: Yjs deletes nested content recursively and would overflow the stack half-way through,
 * leaving the delete half-applied. Only a document stored before the limit holds such types; they can
 * still be emptied from the inside out. Costs what Yjs's delete would: a walk over the deleted types.
 */
export const checkDeletedNesting = (doc: Y.Doc, { ds }: DecodedUpdate): void => {
  for (const [client, ranges] of ds.clients) {
    const structs = doc.store.clients.get(client)
    if (structs === undefined) continue
    const state = Y.getState(doc.store, client)
    for (const { clock, len } of ranges) {
      if (clock >= state) continue
      for (let i = Y.findIndexSS(structs, clock); i < structs.length && structs[i]!.id.clock < clock + len; i++) {
        const struct = structs[i]!
        if (!(struct instanceof Y.Item) || struct.deleted || !(struct.content instanceof Y.ContentType)) continue
        if (deepTypeItems(struct.content.type, MAX_NESTING_DEPTH) !== null) {
          throw new SyncError('BAD_UPDATE', `update deletes a type nested deeper than ${MAX_NESTING_DEPTH} levels`)
        }
      }
    }
  }
}
