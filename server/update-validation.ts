/**
 * What the server checks before an update may be stored: that Yjs can decode it, that applying it cannot
 * throw half-way (a stored update that throws would break every later load), and whether it adds anything.
 */
import * as Y from 'yjs'
import { SyncError } from './errors.js'

/** The update a client sends when it has nothing the other side lacks: no structs, no deletions. */
export const isEmptyUpdate = (update: Uint8Array): boolean =>
  update.length === 2 && update[0] === 0 && update[1] === 0

type DecodedUpdate = ReturnType<typeof Y.decodeUpdate>

const MAX_CLIENT = 0xffffffff
/** A billion operations by one client: far past any real document, well inside Yjs's 32-bit encoders. */
const MAX_CLOCK = 2 ** 30

/**
 * Decodes `update` completely and checks it, or throws BAD_UPDATE. Nothing is applied.
 *
 * Some updates decode, yet Yjs throws half-way through applying them (found by the fuzzer): an item whose
 * left or right neighbour or parent is a later item of its own client (Yjs only checks other clients),
 * and a delete range of length 0. Stored, they would fail every load and every compaction of the room.
 * Client ids are 32-bit and clocks count a client's characters: ids past that come from a forger.
 */
export const validateUpdate = (update: Uint8Array): DecodedUpdate => {
  let decoded: DecodedUpdate
  try {
    decoded = Y.decodeUpdate(update)
  } catch (error) {
    throw new SyncError('BAD_UPDATE', `update cannot be decoded: ${(error as Error).message}`)
  }
  const outOfRange = (client: number, clock: number): boolean => client > MAX_CLIENT || clock > MAX_CLOCK
  for (const struct of decoded.structs) {
    const { id } = struct
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
