/**
 * A long-poll send's body, folded into what it asks of the room. A body may hold any number of frames;
 * what the server does for it must not grow with that number beyond reading them:
 *
 * - its sync step 1 messages become one, with the lowest state vector of them all, so the answer holds
 *   one step 2 (and the server's one step 1), not one per frame (a 5 KB body asked a 1 MiB document
 *   for a 1,000 MiB answer);
 * - its awareness messages become one update, with each client's entry as y-protocols would keep it after
 *   applying them in order: the room applies it once, so the limit of states a client may add counts per
 *   request, and the room's peers get one frame;
 * - query-awareness and a read-only client's step 2 are answered once.
 *
 * Updates stay one by one (each is admitted on its own; merging them first costs Yjs quadratic time in
 * their number), and only a write client sends them; empty ones are dropped. Frames are
 * read one at a time, never held as a list: a body of millions of tiny frames costs no more memory than
 * its bytes. Every frame is checked before anything takes effect, so a body with one bad frame changes
 * nothing.
 */
import * as decoding from 'lib0/decoding'
import * as Y from 'yjs'
import type { Access } from '../access.js'
import { checkStatesAreJson, NULL_STATE, readAwarenessEntries, type AwarenessEntry } from '../awareness-codec.js'
import { SyncError } from '../errors.js'
import * as protocol from '../protocol.js'
import { isEmptyUpdate, validateUpdate } from '../update-admission.js'
import { PollWireError } from './long-poll-wire.js'

/** Awareness clients one send may name (states and removals, its own and echoes of others'). */
export const MAX_SEND_AWARENESS_CLIENTS = 20_000

export interface SendPlan {
  /** Frames the body held (for the metrics). */
  readonly frames: number
  /**
   * A write client's non-empty updates (step 2 and update messages), in order, each checked to decode.
   * Views into the body, not decoded copies: those cost some hundred times their bytes.
   */
  readonly updates: readonly Uint8Array[]
  /** The lowest of the body's step 1 state vectors (a step 2 against it answers each), or null for none. */
  readonly stateVector: Map<number, number> | null
  /** The body's awareness messages as one: each client's entry that applying them in order would keep. */
  readonly awareness: ReadonlyMap<number, AwarenessEntry>
  readonly queryAwareness: boolean
  /** A read-only client sent a step 2 with content: it is dropped, and answered with permission denied once. */
  readonly readOnlyStep2: boolean
}

/** Decodes and checks a send's body; throws SyncError (BAD_MESSAGE, BAD_UPDATE, FORBIDDEN) for a bad one. */
export const planSend = (body: Uint8Array, access: Access): SendPlan => {
  const updates: Uint8Array[] = []
  const awareness = new Map<number, AwarenessEntry>()
  let stateVector: Map<number, number> | null = null
  let queryAwareness = false
  let readOnlyStep2 = false
  let frames = 0
  const decoder = decoding.createDecoder(body)
  try {
    for (; decoding.hasContent(decoder); frames++) {
      const frame = readFrame(decoder, frames)
      const message = protocol.decodeMessage(frame)
      switch (message.type) {
        case 'sync-step1':
          stateVector = lowest(stateVector, decodeStateVector(message.stateVector))
          break
        case 'sync-step2':
        case 'sync-update':
          if (access.mode === 'read') {
            if (isEmptyUpdate(message.update)) break
            if (message.type === 'sync-update') throw new SyncError('FORBIDDEN', 'read-only access: updates are not accepted')
            validateUpdate(message.update)
            readOnlyStep2 = true
            break
          }
          validateUpdate(message.update)
          if (!isEmptyUpdate(message.update)) updates.push(message.update)
          break
        case 'awareness': {
          const entries = readAwarenessEntries(message.update)
          checkStatesAreJson(entries)
          for (const entry of entries) keepAsApplied(awareness, entry)
          if (awareness.size > MAX_SEND_AWARENESS_CLIENTS) throw new PollWireError(`a send may name at most ${MAX_SEND_AWARENESS_CLIENTS} awareness clients`)
          break
        }
        case 'query-awareness':
          queryAwareness = true
          break
        default:
          break
      }
    }
  } catch (error) {
    if (error instanceof SyncError) throw error
    if (error instanceof PollWireError || error instanceof protocol.ProtocolError) throw new SyncError('BAD_MESSAGE', error.message)
    throw error
  }
  return { frames, updates, stateVector, awareness, queryAwareness, readOnlyStep2 }
}

const { readBytes } = protocol.fieldReaders('body', (message) => new PollWireError(message))

const readFrame = (decoder: decoding.Decoder, index: number): Uint8Array => {
  const frame = readBytes(decoder, `frame ${index}`)
  if (frame.length === 0) throw new PollWireError(`frame ${index} is empty`)
  return frame
}

const decodeStateVector = (bytes: Uint8Array): Map<number, number> => {
  try {
    return Y.decodeStateVector(bytes)
  } catch {
    throw new PollWireError('bad state vector: sync step 1 cannot be decoded')
  }
}

/** For each client, the lower clock of the two (a client one of them lacks counts as 0, and is left out). */
const lowest = (a: Map<number, number> | null, b: Map<number, number>): Map<number, number> => {
  if (a === null) return b
  for (const [client, clock] of a) {
    const other = b.get(client)
    if (other === undefined) a.delete(client)
    else if (other < clock) a.set(client, other)
  }
  return a
}

/**
 * Keeps, for the entry's client, what y-protocols would hold after applying both in order: a newer clock
 * wins, and at the same clock a removal wins over a state.
 */
const keepAsApplied = (kept: Map<number, AwarenessEntry>, entry: AwarenessEntry): void => {
  const [client, clock, state] = entry
  const before = kept.get(client)
  if (before === undefined || clock > before[1] || (clock === before[1] && state === NULL_STATE)) kept.set(client, entry)
}
