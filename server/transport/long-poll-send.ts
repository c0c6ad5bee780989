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
 * - query-awareness and a read-only client's edits are answered once.
 *
 * Updates, which only a write client sends, are kept as views into the body, not decoded (a decoded
 * update costs some hundred times its bytes); empty ones are dropped. A body of a few updates (what an
 * honest client sends) hands them on one by one. Past MERGE_RUN, consecutive updates are merged in runs
 * of MERGE_RUN: each admitted update becomes a pending commit of its own, and a body of 40,000 one-letter
 * updates held the event loop for 1.4-2.2 s (every room of the instance waited; a 16 MiB body would hold
 * it for half a minute); merged in runs, 0.6-0.8 s (merging them all at once costs Yjs quadratic time
 * in their number). The room decodes each once, admitting them all before it queues any (see
 * `Room.receiveAll`), so one bad update changes nothing.
 * `sendMessages` hands the room the folded body as y-websocket messages: the room answers them as it
 * answers a socket's. Frames are
 * read one at a time, never held as a list: a body of millions of tiny frames costs no more memory than
 * its bytes. Every frame is checked before anything takes effect, so a body with one bad frame changes
 * nothing.
 */
import * as decoding from 'lib0/decoding'
import * as Y from 'yjs'
import type { Access } from '../access.js'
import { checkStatesAreJson, encodeAwarenessEntries, NULL_STATE, readAwarenessEntries, type AwarenessEntry } from '../awareness-codec.js'
import { SyncError } from '../errors.js'
import * as protocol from '../protocol.js'
import type { ReceivedMessage } from '../room.js'
import { isEmptyUpdate, validateUpdate } from '../update-admission.js'
import { PollWireError } from './long-poll-wire.js'

/** Past this many updates in one send, consecutive ones are merged in runs of this many. */
export const MERGE_RUN = 100

/** Awareness clients one send may name (states and removals, its own and echoes of others'). */
export const MAX_SEND_AWARENESS_CLIENTS = 20_000

export interface SendPlan {
  /** Frames the body held (for the metrics). */
  readonly frames: number
  /** A write client's non-empty updates (step 2 and update messages), in order: views into the body. */
  readonly updates: readonly Uint8Array[]
  /** The lowest of the body's step 1 state vectors (a step 2 against it answers each), or null for none. */
  readonly stateVector: Map<number, number> | null
  /** The body's awareness messages as one: each client's entry that applying them in order would keep. */
  readonly awareness: ReadonlyMap<number, AwarenessEntry>
  readonly queryAwareness: boolean
  /**
   * The first edit (a step 2 or update with content) of a read-only client, or null: its edits are
   * dropped, and answered with permission denied once, as the room answers a read-only socket's.
   */
  readonly readOnlyEdit: Uint8Array | null
}

/** Decodes and checks a send's body; throws SyncError (BAD_MESSAGE, BAD_UPDATE) for a bad one. */
export const planSend = (body: Uint8Array, access: Access): SendPlan => {
  const updates: Uint8Array[] = []
  const awareness = new Map<number, AwarenessEntry>()
  let stateVector: Map<number, number> | null = null
  let queryAwareness = false
  let readOnlyEdit: Uint8Array | null = null
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
            validateUpdate(message.update)
            readOnlyEdit ??= message.update
            break
          }
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
  return { frames, updates: mergeRuns(updates), stateVector, awareness, queryAwareness, readOnlyEdit }
}

/** `updates` as they are when there are at most MERGE_RUN of them, else merged in runs of MERGE_RUN. */
const mergeRuns = (updates: Uint8Array[]): Uint8Array[] => {
  if (updates.length <= MERGE_RUN) return updates
  const merged: Uint8Array[] = []
  for (let i = 0; i < updates.length; i += MERGE_RUN) {
    const run = updates.slice(i, i + MERGE_RUN)
    try {
      merged.push(run.length === 1 ? run[0]! : Y.mergeUpdates(run))
    } catch {
      // Name the update Yjs cannot read, as a body of a few would be told.
      for (const update of run) validateUpdate(update)
      throw new SyncError('BAD_UPDATE', 'an update of the body cannot be merged with the others')
    }
  }
  return merged
}

/** The folded body as the messages the room takes. */
export const sendMessages = (plan: SendPlan): ReceivedMessage[] => {
  const messages: ReceivedMessage[] = plan.updates.map((update) => ({ type: 'sync-update', update }))
  if (plan.readOnlyEdit !== null) messages.push({ type: 'sync-update', update: plan.readOnlyEdit })
  if (plan.awareness.size > 0) messages.push({ type: 'awareness', update: encodeAwarenessEntries([...plan.awareness.values()]) })
  if (plan.stateVector !== null) messages.push({ type: 'sync-step1', stateVector: Y.encodeStateVector(plan.stateVector) })
  if (plan.queryAwareness) messages.push({ type: 'query-awareness' })
  return messages
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
