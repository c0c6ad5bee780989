/**
 * What a held poll keeps of the snapshot it brought, and how a change to the room is checked against it.
 *
 * A poll's snapshot is a state vector and a delete set, and a delete set may be megabytes: ten held polls
 * with 3.8 MiB delete sets held 800 MB as Yjs objects, and every change re-sorted each of them (one typed
 * character stalled the server 1.5 s). So a held poll keeps a compact copy, made once when it is held:
 * its clocks and its deleted ranges (as sorted runs in one typed array per client) for the clients the room
 * has, and no deleted ranges at all past MAX_HELD_DELETE_RUNS, in which case it is answered at the next
 * change of the document (one answer more than needed, at worst). A change is then checked by what it
 * changed only: the clients whose clocks it moved, and the ranges it deleted, each found by binary search.
 * The work per change grows with the change, not with the held polls' snapshots.
 */
import type * as Y from 'yjs'
import type { AwarenessClock } from './long-poll-wire.js'

/** Deleted runs (and clients) a held poll keeps at most: 16 bytes a run, 256 KiB in all. */
export const MAX_HELD_DELETE_RUNS = 16_384

/** What changed in the room since the last check: moved clocks, and deleted ranges. */
export interface RoomChange {
  readonly advanced: Map<number, number>
  readonly deleted: Array<{ readonly client: number, readonly clock: number, readonly len: number }>
}

export class HeldSnapshot {
  /** The client's clocks for the clients the room has (a client the room lacks is the client's news). */
  readonly stateVector: Map<number, number>
  /** Per client, sorted disjoint runs: start, end, start, end...; null when there were too many to keep. */
  readonly #deletes: Map<number, Float64Array> | null

  /** `room` is the room's state vector when the poll is held. */
  constructor (snapshot: Y.Snapshot, room: ReadonlyMap<number, number>) {
    this.stateVector = new Map()
    for (const [client, clock] of snapshot.sv) if (room.has(client)) this.stateVector.set(client, clock)
    this.#deletes = compactDeletes(snapshot.ds, room)
  }

  /** Whether the client lacks anything `change` brought. */
  lacks (change: RoomChange): boolean {
    for (const [client, clock] of change.advanced) {
      if (clock > (this.stateVector.get(client) ?? 0)) return true
    }
    if (change.deleted.length === 0) return false
    if (this.#deletes === null) return true
    for (const { client, clock, len } of change.deleted) {
      if (len > 0 && !covered(this.#deletes.get(client), clock, clock + len)) return true
    }
    return false
  }
}

const compactDeletes = (ds: Y.Snapshot['ds'], room: ReadonlyMap<number, number>): Map<number, Float64Array> | null => {
  const compact = new Map<number, Float64Array>()
  let kept = 0
  for (const [client, ranges] of ds.clients) {
    if (!room.has(client) || ranges.length === 0) continue
    const sorted = ranges.length > 1 ? [...ranges].sort((a, b) => a.clock - b.clock) : ranges
    const runs: number[] = []
    for (const { clock, len } of sorted) {
      if (len <= 0) continue
      const last = runs.length - 1
      if (last > 0 && clock <= runs[last]!) runs[last] = Math.max(runs[last]!, clock + len)
      else runs.push(clock, clock + len)
    }
    kept += runs.length / 2 + 1
    if (kept > MAX_HELD_DELETE_RUNS) return null
    compact.set(client, Float64Array.from(runs))
  }
  return compact
}

/** Whether [start, end) lies inside one of `runs`. */
const covered = (runs: Float64Array | undefined, start: number, end: number): boolean => {
  if (runs === undefined) return false
  // The last run starting at or before `start` is the only one that can cover the range.
  let low = 0
  let high = runs.length / 2 - 1
  let found = -1
  while (low <= high) {
    const mid = (low + high) >> 1
    if (runs[2 * mid]! <= start) { found = mid; low = mid + 1 } else high = mid - 1
  }
  return found >= 0 && runs[2 * found + 1]! >= end
}

/**
 * The part of a poll kept while it is held: its entries for awareness clients the room has not met
 * matter only if the room meets them during the hold, and then cost one answer too many at most.
 */
export const heldClocks = (clocks: ReadonlyMap<number, AwarenessClock>, met: ReadonlyMap<number, unknown>): ReadonlyMap<number, AwarenessClock> => {
  if (clocks.size <= met.size && [...clocks.keys()].every((id) => met.has(id))) return clocks
  const kept = new Map<number, AwarenessClock>()
  for (const [id, clock] of clocks) if (met.has(id)) kept.set(id, clock)
  return kept
}
