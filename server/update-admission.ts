/**
 * Update admission: what the server checks before an update may be stored. That Yjs can decode it,
 * that applying it cannot throw half-way (a stored update that throws would break every later load),
 * whether it adds anything, and that the room's document will stay what every encoding of it says
 * (`admitUpdate`).
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { SyncError } from './errors.js'
import type { Claim } from './storage/storage.js'
import { checkSameStructs } from './struct-conflict.js'
import { checkDeletedNesting, checkNesting } from './nesting.js'
import { countSubdocuments, MAX_SUBDOCUMENTS } from './subdocuments.js'

/** The update a client sends when it has nothing the other side lacks: no structs, no deletions. */
export const isEmptyUpdate = (update: Uint8Array): boolean =>
  update.length === 2 && update[0] === 0 && update[1] === 0

/** An update as `Y.decodeUpdate` reads it: its structs and its delete set. */
export type DecodedUpdate = ReturnType<typeof Y.decodeUpdate>

/**
 * The largest client id: Yjs 13 makes 32-bit ids, Yjs 14 53-bit ones (`random.uint53`), and both encode
 * them as lib0 varuints, which hold every safe integer. lib0 reads a varuint's last byte unchecked, so an
 * update can name an id past it, which a JavaScript number cannot hold exactly: two such ids may read as
 * one, and the document would no longer be what its bytes say.
 */
const MAX_CLIENT = Number.MAX_SAFE_INTEGER
/**
 * A billion operations by one client: far past any real document, and inside the 31 bits lib0's
 * `IntDiffOptRleEncoder` promises for the clocks of Yjs's update format v2.
 */
const MAX_CLOCK = 2 ** 30

/**
 * Decodes `update` completely and checks it, or throws BAD_UPDATE. Nothing is applied.
 *
 * Some updates decode, yet Yjs throws half-way through applying them (found by the fuzzer): an item whose
 * left or right neighbour or parent is a later item of its own client (Yjs only checks other clients),
 * and a delete range of length 0. Stored, they would fail every load and every compaction of the room.
 * Client ids are safe integers (53-bit in Yjs 14, 32-bit in Yjs 13) and clocks count a client's
 * operations: ids past that come from a forger, as does an update that lists one client's structs in two
 * places.
 */
export const validateUpdate = (update: Uint8Array): DecodedUpdate => {
  // Counted on the bytes: decoding makes a Y.Doc of 5-7 KB for each 17-byte reference, and would make
  // them for a flood of references cut short too, before it finds the end missing.
  const subdocuments = countSubdocuments(update)
  if (subdocuments === -1) throw new SyncError('BAD_UPDATE', 'update cannot be decoded')
  if (subdocuments > MAX_SUBDOCUMENTS) throw new SyncError('BAD_UPDATE', `update holds more than ${MAX_SUBDOCUMENTS} subdocuments`)
  let decoded: DecodedUpdate
  try {
    decoded = Y.decodeUpdate(update)
  } catch (error) {
    throw new SyncError('BAD_UPDATE', `update cannot be decoded: ${(error as Error).message}`)
  }
  const outOfRange = (client: number, clock: number): boolean => client > MAX_CLIENT || clock > MAX_CLOCK
  const listed = new Set<number>()
  let runClient = -1
  let runEnd = -1
  for (const struct of decoded.structs) {
    const { id } = struct
    // A client's structs are one run of consecutive clocks. Yjs keeps only the last run it reads for a
    // client, every other reader (merging, encoding a late joiner's step 2) keeps them all.
    if (id.client !== runClient || id.clock !== runEnd) {
      if (listed.has(id.client)) throw new SyncError('BAD_UPDATE', 'update lists a client twice')
      listed.add(id.client)
      runClient = id.client
    }
    runEnd = id.clock + struct.length
    if (outOfRange(id.client, id.clock + struct.length)) throw new SyncError('BAD_UPDATE', 'update holds an out-of-range id')
    if (!(struct instanceof Y.Item)) continue
    const parent = struct.parent as unknown
    for (const ref of [struct.origin, struct.rightOrigin, parent instanceof Y.ID ? parent : null]) {
      if (ref === null) continue
      if (outOfRange(ref.client, ref.clock)) throw new SyncError('BAD_UPDATE', 'update refers to an out-of-range id')
      if (ref.client === id.client && ref.clock >= id.clock) {
        throw new SyncError('BAD_UPDATE', 'update refers to a later item of the same client')
      }
    }
  }
  for (const [client, ranges] of decoded.ds.clients) {
    for (const range of ranges) {
      if (!(range.len > 0)) throw new SyncError('BAD_UPDATE', 'update deletes an empty range')
      if (outOfRange(client, range.clock + range.len)) throw new SyncError('BAD_UPDATE', 'update deletes an out-of-range id')
    }
  }
  return decoded
}

/**
 * Whether `doc` already holds everything in `update`: every struct and every deletion. A reconnecting
 * client's sync step 2 is usually such an update (it always carries the whole delete set), and storing
 * it on every reconnect would grow the log for nothing.
 */
export const addsNothing = (doc: Y.Doc, { structs, ds }: DecodedUpdate): boolean => {
  for (const struct of structs) {
    if (struct instanceof Y.Skip) continue
    if (struct.id.clock + struct.length > Y.getState(doc.store, struct.id.client)) return false
  }
  for (const [client, ranges] of ds.clients) {
    const known = doc.store.clients.get(client)
    if (known === undefined) return false
    const state = Y.getState(doc.store, client)
    for (const { clock, len } of ranges) {
      if (clock + len > state) return false
      for (let i = Y.findIndexSS(known, clock); i < known.length && known[i]!.id.clock < clock + len; i++) {
        if (!known[i]!.deleted) return false
      }
    }
  }
  return true
}

/** How far a room's content reaches for `client`: the clock its next struct will have. */
type Reach = (client: number) => number

/** What `admitUpdate` makes of an update. */
export type Admission =
  /**
   * Store `update` (a new array, or the input itself); afterwards the room reaches `reach` for these
   * clients. `claims` are the ids its structs take, from where the room's content reached; its types nest
   * at most `depth` deep (see `checkNesting`), and it holds `subdocuments` more.
   */
  | {
    readonly update: Uint8Array, readonly reach: ReadonlyMap<number, number>, readonly claims: readonly Claim[]
    readonly depth: number, readonly subdocuments: number
  }
  /** Nothing new: the room holds all of it already. */
  | 'known'
  /** It depends on content the room does not hold (see `integrationReach`); nothing of it may be stored. */
  | 'incomplete'

/**
 * Decides what of `update` a room stores, given how far the room's content reaches (what its document
 * holds plus what waits for a commit, and what that adds: `queuedContent`). Throws BAD_UPDATE for an
 * update that must never be stored: among them one that nests types too deep (see `checkNesting`) or
 * takes the room past MAX_SUBDOCUMENTS subdocuments.
 *
 * Two kinds of update would leave the room's document different from every encoding of it (the update
 * sent to peers, a late joiner's step 2, the compacted snapshot), so that clients stop converging; the
 * fuzzer produced both from a write client's frames:
 * - A struct that starts inside content the room holds. Yjs integrates its tail from where the room's
 *   content ends, with the room's struct there as left neighbour but with the parent the update names,
 *   and peers receive it with that neighbour as origin, from which they infer the neighbour's parent. A
 *   crafted struct names another parent. Such an update is cut to start where the room's content ends,
 *   which is how every peer will see it. Honest clients send these too (an update resent after a
 *   reconnect), and lose nothing by the cut.
 * - A struct or deletion that depends on content the room does not hold. Yjs keeps it aside as pending
 *   and integrates it once that content arrives, but an encoding of the document merges the pending
 *   structs in, and a later struct reusing their ids makes the two resolve differently. The room keeps
 *   nothing pending: such an update is refused, and the client is asked for what is missing.
 */
/** What the updates waiting for their commit add to a room, beyond how far they reach. */
export interface QueuedContent {
  /** The deepest level they nest types to (see `checkNesting`). */
  readonly depth: number
  /** The subdocument references they hold. */
  readonly subdocuments: number
}

export const admitUpdate = (
  doc: Y.Doc,
  update: Uint8Array,
  queued: ReadonlyMap<number, number>,
  queuedContent: QueuedContent = { depth: 0, subdocuments: 0 },
): Admission => {
  if (isEmptyUpdate(update)) return 'known'
  let decoded = validateUpdate(update)
  checkSameStructs(doc, decoded.structs)
  if (addsNothing(doc, decoded)) return 'known'
  const held: Reach = (client) => Math.max(Y.getState(doc.store, client), queued.get(client) ?? 0)
  if (decoded.structs.some((struct) => struct.id.clock < held(struct.id.client))) {
    update = Y.diffUpdate(update, encodeReach(decoded, held))
    decoded = Y.decodeUpdate(update)
  }
  checkOrigins(doc, decoded)
  const depth = checkNesting(doc, decoded, queuedContent.depth)
  checkDeletedNesting(doc, decoded)
  const subdocuments = decoded.structs.filter((struct) => struct instanceof Y.Item && struct.content instanceof Y.ContentDoc).length
  if (subdocuments > 0 && doc.subdocs.size + queuedContent.subdocuments + subdocuments > MAX_SUBDOCUMENTS) {
    throw new SyncError('BAD_UPDATE', `a room holds at most ${MAX_SUBDOCUMENTS} subdocuments`)
  }
  const reach = integrationReach(decoded, held)
  if (reach === null) return 'incomplete'
  // Without a gap (integrationReach made sure), a client's structs start where the room's content ends.
  return { update, reach, depth, subdocuments, claims: [...reach].map(([client, to]) => ({ client, from: held(client), to })) }
}

/** The ids `update`'s structs take, per client (for an update already in the document). */
export const claimsOf = (update: Uint8Array): Claim[] => {
  const claims = new Map<number, { from: number, to: number }>()
  for (const struct of Y.decodeUpdate(update).structs) {
    if (struct instanceof Y.Skip) continue
    const { client, clock } = struct.id
    const known = claims.get(client)
    claims.set(client, { from: Math.min(known?.from ?? clock, clock), to: Math.max(known?.to ?? 0, clock + struct.length) })
  }
  return [...claims].map(([client, { from, to }]) => ({ client, from, to }))
}

/** How many items `checkOrigins` walks from an item's origin towards its right origin before it stops. */
const ORIGIN_WALK_LIMIT = 1000
/** How many items it walks for all the items of one update: an update costs at most tens of microseconds. */
const ORIGIN_WALK_BUDGET = 10 * ORIGIN_WALK_LIMIT

/**
 * Throws BAD_UPDATE for an item whose origins contradict the room's document. A client makes an item
 * between its left neighbour (origin) and the item right of it (right origin); items made concurrently
 * come between the two, never around them. An item whose right origin is its origin, or lies left of it,
 * or in another parent, is forged, and Yjs places it differently depending on the order it integrates
 * items in: a late joiner's document would differ from the connected clients'. The walk is bounded, so
 * a right origin farther away than ORIGIN_WALK_LIMIT items, or past ORIGIN_WALK_BUDGET for the update,
 * is let through unchecked. Origins that are not in the document yet (later in the update, or waiting
 * for a commit) are not checked. `admitUpdate` calls it; a caller that must refuse a batch of updates
 * whole, before admitting any, calls it first for each.
 */
export const checkOrigins = (doc: Y.Doc, { structs }: DecodedUpdate): void => {
  let budget = ORIGIN_WALK_BUDGET
  for (const struct of structs) {
    if (!(struct instanceof Y.Item) || struct.origin === null || struct.rightOrigin === null) continue
    const { origin, rightOrigin } = struct
    if (origin.clock >= Y.getState(doc.store, origin.client) || rightOrigin.clock >= Y.getState(doc.store, rightOrigin.client)) continue
    const left = Y.getItem(doc.store, origin)
    const right = Y.getItem(doc.store, rightOrigin)
    // A collected neighbour (its parent was deleted): Yjs collects the new item too, wherever it points.
    if (!(left instanceof Y.Item) || !(right instanceof Y.Item)) continue
    if (left === right) {
      if (rightOrigin.clock <= origin.clock) throw new SyncError('BAD_UPDATE', 'update holds an item whose right origin is not right of its origin')
      continue
    }
    if (left.parent !== right.parent || left.parentSub !== right.parentSub) {
      throw new SyncError('BAD_UPDATE', 'update holds an item whose origins lie in different parents')
    }
    let item = left.right
    for (let steps = Math.min(ORIGIN_WALK_LIMIT, budget); item !== right && item !== null && steps > 0; steps--, budget--) item = item.right
    if (item === null) throw new SyncError('BAD_UPDATE', 'update holds an item whose right origin is not right of its origin')
  }
}

/** A state vector of the clients `decoded` has structs of, at `held`. */
const encodeReach = ({ structs }: DecodedUpdate, held: Reach): Uint8Array => {
  const clients = new Set(structs.map((struct) => struct.id.client))
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, clients.size)
  for (const client of clients) {
    encoding.writeVarUint(encoder, client)
    encoding.writeVarUint(encoder, held(client))
  }
  return encoding.toUint8Array(encoder)
}

type Struct = DecodedUpdate['structs'][number]

/**
 * Whether Yjs integrates all of `decoded` on top of content reaching `held`, as it would: each struct
 * continues its client's content without a gap, and its origin, right origin and parent exist by then,
 * in the room or earlier in the update; each deletion is of content that exists once the structs are in.
 * Returns how far the update takes each of its clients, or null if some of it would be left pending.
 *
 * Each client's structs integrate in order. A struct that waits for another client's content sends the
 * walk to that client's next struct, depth first, as Yjs does: every struct is checked a bounded number of
 * times, whatever order the clients come in (a pass over all waiting structs per step would be quadratic,
 * seconds for a crafted update of 80 KB). A client reached again while it waits means a cycle: pending.
 */
const integrationReach = ({ structs, ds }: DecodedUpdate, held: Reach): Map<number, number> | null => {
  const reach = new Map<number, number>()
  const at = (client: number): number => reach.get(client) ?? held(client)
  // Each client's structs in clock order (validateUpdate made sure they are one run), and how many are in.
  const queues = new Map<number, { readonly structs: Struct[], next: number }>()
  for (const struct of structs) {
    const queue = queues.get(struct.id.client)
    if (queue === undefined) queues.set(struct.id.client, { structs: [struct], next: 0 })
    else queue.structs.push(struct)
  }
  const head = (client: number): Struct | undefined => {
    const queue = queues.get(client)
    return queue === undefined ? undefined : queue.structs[queue.next]
  }
  /** The id of another client's content that `struct` needs and that is not there yet, or null. */
  const wanted = (struct: Struct): Y.ID | null => {
    if (!(struct instanceof Y.Item)) return null
    const { client } = struct.id
    const parent = struct.parent as unknown
    for (const ref of [struct.origin, struct.rightOrigin, parent instanceof Y.ID ? parent : null]) {
      // Refs to a client's own earlier content are there once the gap check passed (validateUpdate).
      if (ref !== null && ref.client !== client && ref.clock >= at(ref.client)) return ref
    }
    return null
  }
  const waiting: Struct[] = []
  const waitingClients = new Set<number>()
  for (const start of queues.keys()) {
    let current = head(start)
    while (current !== undefined) {
      const { client, clock } = current.id
      // A gap in the client's own content: nothing later in the update can fill it.
      if (!(current instanceof Y.Skip) && clock > at(client)) return null
      const missing = wanted(current)
      if (missing === null) {
        if (!(current instanceof Y.Skip)) reach.set(client, Math.max(at(client), clock + current.length))
        queues.get(client)!.next++
        current = waiting.pop()
        if (current === undefined) current = head(client)
        else waitingClients.delete(current.id.client)
        continue
      }
      const next = head(missing.client)
      if (next === undefined || waitingClients.has(missing.client)) return null
      waiting.push(current)
      waitingClients.add(client)
      current = next
    }
  }
  for (const [client, ranges] of ds.clients) {
    for (const { clock, len } of ranges) if (clock + len > at(client)) return null
  }
  return reach
}
