/**
 * The long-polling wire format, as pure functions over bytes (lib0 encoding). Shared by the server
 * (`long-poll.ts`) and the client channel (`web/poll-channel.ts`); it imports nothing from Node.
 *
 * Both request kinds are POSTs to `<prefix><room>`, told apart by `?op=`:
 *
 *   op=send   body: frames      the client's y-websocket frames, in order
 *             reply: frames     what the server answers them with (sync step 2 and step 1 for a step 1,
 *                               every awareness state for a query-awareness, permission denied)
 *   op=poll   body: varUint8Array(snapshot) · varUint(n) · n × (varUint(clientID) · varUint(clock) · varUint(hasState))
 *             reply: frames     a sync update with what the client lacks, and/or an awareness update
 *                               with the states newer than the client's; empty when nothing changed
 *
 *   frames = k × varUint8Array(frame), up to the end of the body (k may be 0).
 *
 * A poll carries a Yjs snapshot (`Y.encodeSnapshot(Y.snapshot(doc))`: the delete set, then the state
 * vector), not only a state vector, because a deletion does not advance the state vector: with the
 * state vector alone the server could not tell whether the client misses a deletion, and would have to
 * answer every poll at once. The awareness entries list every client the client's awareness has met,
 * with its clock and whether it holds a state now, so the server sends exactly the changes the client
 * would apply, and never the same one twice.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { fieldReaders, ProtocolError } from '../protocol.js'

/** Input that does not follow the format: the message says what was wrong (for a 400 and the log). */
export class PollWireError extends ProtocolError {
  override readonly name = 'PollWireError'
}

/** What a client's awareness knows of one client id. */
export interface AwarenessClock {
  readonly clock: number
  readonly hasState: boolean
}

export interface PollRequest {
  readonly snapshot: Y.Snapshot
  readonly clocks: ReadonlyMap<number, AwarenessClock>
}

export const encodeFrames = (frames: readonly Uint8Array[]): Uint8Array => {
  const encoder = encoding.createEncoder()
  for (const frame of frames) encoding.writeVarUint8Array(encoder, frame)
  return encoding.toUint8Array(encoder)
}

const { readUint, readBytes } = fieldReaders('body', (message) => new PollWireError(message))

/** Decodes a list of frames; the frames are views into `body`. An empty frame is an error. */
export const decodeFrames = (body: Uint8Array): Uint8Array[] => {
  const decoder = decoding.createDecoder(body)
  const frames: Uint8Array[] = []
  while (decoding.hasContent(decoder)) {
    const frame = readBytes(decoder, `frame ${frames.length}`)
    if (frame.length === 0) throw new PollWireError(`frame ${frames.length} is empty`)
    frames.push(frame)
  }
  return frames
}

/**
 * Awareness entries a poll request may carry. A client meets every client that opens the room while it
 * is open; the server turns each entry into a map entry held with the poll, some 25 times the bytes.
 */
export const MAX_POLL_AWARENESS_ENTRIES = 20_000

/**
 * What the client's awareness has met: every id in its meta, with its clock and whether it holds a state;
 * past MAX_POLL_AWARENESS_ENTRIES, the ids it holds a state of first, then as many of the others as fit.
 * An id left out is one the server sends again if it holds a state of it.
 */
export const awarenessClocks = (awareness: { meta: Map<number, { clock: number }>, states: Map<number, unknown> }): Map<number, AwarenessClock> => {
  const clocks = new Map<number, AwarenessClock>()
  const fits = awareness.meta.size <= MAX_POLL_AWARENESS_ENTRIES
  for (const [id, meta] of awareness.meta) {
    const hasState = awareness.states.has(id)
    if (fits || hasState) clocks.set(id, { clock: meta.clock, hasState })
  }
  for (const [id, meta] of awareness.meta) {
    if (clocks.size >= MAX_POLL_AWARENESS_ENTRIES) break
    if (!clocks.has(id)) clocks.set(id, { clock: meta.clock, hasState: false })
  }
  return clocks
}

export const encodePollRequest = (snapshot: Uint8Array, clocks: ReadonlyMap<number, AwarenessClock>): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint8Array(encoder, snapshot)
  encoding.writeVarUint(encoder, clocks.size)
  for (const [id, { clock, hasState }] of clocks) {
    encoding.writeVarUint(encoder, id)
    encoding.writeVarUint(encoder, clock)
    encoding.writeVarUint(encoder, hasState ? 1 : 0)
  }
  return encoding.toUint8Array(encoder)
}

export const decodePollRequest = (body: Uint8Array): PollRequest => {
  const decoder = decoding.createDecoder(body)
  const bytes = readBytes(decoder, 'snapshot')
  let snapshot: Y.Snapshot
  try {
    snapshot = Y.decodeSnapshot(bytes)
  } catch (error) {
    throw new PollWireError(`bad state vector: the snapshot cannot be decoded (${(error as Error).message})`)
  }
  for (const clock of snapshot.sv.values()) {
    if (!Number.isSafeInteger(clock)) throw new PollWireError('bad state vector: a clock is out of range')
  }
  const count = readUint(decoder, 'awareness entry count')
  if (count > MAX_POLL_AWARENESS_ENTRIES) throw new PollWireError(`${count} awareness entries; a poll may carry at most ${MAX_POLL_AWARENESS_ENTRIES}`)
  // Each entry takes at least three bytes: a count larger than that cannot be honest.
  if (count * 3 > decoder.arr.length - decoder.pos) throw new PollWireError(`truncated body: ${count} awareness entries announced`)
  const clocks = new Map<number, AwarenessClock>()
  for (let i = 0; i < count; i++) {
    const id = readUint(decoder, 'awareness client id')
    const clock = readUint(decoder, 'awareness clock')
    const flag = readUint(decoder, 'awareness state flag')
    if (flag > 1) throw new PollWireError(`awareness state flag must be 0 or 1, got ${flag}`)
    clocks.set(id, { clock, hasState: flag === 1 })
  }
  if (decoding.hasContent(decoder)) throw new PollWireError(`${decoder.arr.length - decoder.pos} unexpected bytes after the poll request`)
  return { snapshot, clocks }
}

/** Sorted, disjoint [start, end) runs of deleted clocks: adjacent and overlapping ranges merged. */
const runsOf = (ranges: ReadonlyArray<{ clock: number, len: number }>): Array<[number, number]> => {
  const runs: Array<[number, number]> = []
  for (const { clock, len } of [...ranges].sort((a, b) => a.clock - b.clock)) {
    const last = runs[runs.length - 1]
    if (last !== undefined && clock <= last[1]) last[1] = Math.max(last[1], clock + len)
    else runs.push([clock, clock + len])
  }
  return runs
}

/** Whether the deleted ranges of `inner` all lie inside deleted ranges of `outer`. */
const deletesCovered = (inner: Y.Snapshot['ds'], outer: Y.Snapshot['ds']): boolean => {
  for (const [client, ranges] of inner.clients) {
    if (ranges.length === 0) continue
    const runs = runsOf(outer.clients.get(client) ?? [])
    for (const { clock, len } of ranges) {
      if (len === 0) continue
      // The last run starting at or before `clock` is the only one that can cover the range.
      let low = 0
      let high = runs.length - 1
      let found = -1
      while (low <= high) {
        const mid = (low + high) >> 1
        if (runs[mid]![0] <= clock) { found = mid; low = mid + 1 } else high = mid - 1
      }
      if (found < 0 || runs[found]![1] < clock + len) return false
    }
  }
  return true
}

/** Whether a document whose snapshot is `server` holds anything a client whose snapshot is `client` lacks. */
export const clientLacks = (server: Y.Snapshot, client: Y.Snapshot): boolean => {
  for (const [id, clock] of server.sv) {
    if (clock > (client.sv.get(id) ?? 0)) return true
  }
  return !deletesCovered(server.ds, client.ds)
}

/**
 * The awareness client ids a client should be sent: each one such that the client, applying the
 * state, changes what it would report in its next poll (so an unchanged room is never answered twice).
 */
export const awarenessToSend = (
  server: { meta: Map<number, { clock: number }>, states: Map<number, unknown> },
  client: ReadonlyMap<number, AwarenessClock>,
): number[] => {
  const ids: number[] = []
  for (const [id, meta] of server.meta) {
    const hasState = server.states.has(id)
    const known = client.get(id)
    if (known === undefined) {
      // y-protocols ignores a clock that is not newer than the one it has (0 for an unknown client).
      if (hasState && meta.clock > 0) ids.push(id)
    } else if (meta.clock > known.clock || (meta.clock === known.clock && !hasState && known.hasState)) {
      ids.push(id)
    }
  }
  return ids
}
