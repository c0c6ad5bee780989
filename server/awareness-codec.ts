/**
 * The awareness update as bytes, read and written without an Awareness:
 *
 *   varUint(n) · n × (varUint(clientID) · varUint(clock) · varString(state JSON))
 *
 * with the state `null` for a removal. y-protocols reads and writes these inside its Awareness; the
 * server also needs them apart from one: to raise clocks (awareness-revival.ts), check limits and echo
 * removals (room-awareness.ts), check a long-poll send before any of it applies, and track which instance
 * owns which state (bus/awareness-owners.ts). This is the one reader and the one writer for all of them.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { fieldReaders, ProtocolError } from './protocol.js'

/** One state of an awareness update: client id, clock, and the state's JSON (`null` for a removal). */
export type AwarenessEntry = readonly [client: number, clock: number, state: string]

/** The JSON of a removed state. */
export const NULL_STATE = 'null'

const { readUint, readBytes } = fieldReaders('awareness update', (message) => new ProtocolError(message))
/** Fatal, as lib0's own reader is: a state that is not UTF-8 is one y-protocols would refuse to apply. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The entries of an awareness update. Throws ProtocolError, naming the field, for bytes that are not one. */
export const readAwarenessEntries = (update: Uint8Array): AwarenessEntry[] => {
  const decoder = decoding.createDecoder(update)
  const entries: AwarenessEntry[] = []
  for (let n = readUint(decoder, 'awareness state count'); n > 0; n--) {
    const client = readUint(decoder, 'awareness client id')
    const clock = readUint(decoder, 'awareness clock')
    let state: string
    try {
      state = utf8.decode(readBytes(decoder, 'awareness state'))
    } catch (error) {
      if (error instanceof ProtocolError) throw error
      throw new ProtocolError('awareness state is not UTF-8')
    }
    entries.push([client, clock, state])
  }
  return entries
}

/** `readAwarenessEntries`, or null for bytes that are not an awareness update (for readers that only observe). */
export const readAwarenessEntriesOrNull = (update: Uint8Array): AwarenessEntry[] | null => {
  try {
    return readAwarenessEntries(update)
  } catch {
    return null
  }
}

/**
 * Throws ProtocolError unless every state is JSON, as y-protocols needs to apply it: for checking a
 * batch of messages whole before any of it takes effect.
 */
export const checkStatesAreJson = (entries: readonly AwarenessEntry[]): void => {
  for (const [, , state] of entries) {
    try {
      JSON.parse(state)
    } catch {
      throw new ProtocolError('awareness state is not JSON')
    }
  }
}

/** An awareness update holding `entries`. */
export const encodeAwarenessEntries = (entries: readonly AwarenessEntry[]): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, entries.length)
  for (const [client, clock, state] of entries) {
    encoding.writeVarUint(encoder, client)
    encoding.writeVarUint(encoder, clock)
    encoding.writeVarString(encoder, state)
  }
  return encoding.toUint8Array(encoder)
}

/**
 * `update` with the states of `clients` replaced by removals at the same clocks; `update` itself if it
 * names none of them or cannot be read.
 */
export const asRemovals = (update: Uint8Array, clients: ReadonlySet<number>): Uint8Array => {
  const entries = readAwarenessEntriesOrNull(update)
  if (entries === null || !entries.some(([client]) => clients.has(client))) return update
  return encodeAwarenessEntries(entries.map(([client, clock, state]) => [client, clock, clients.has(client) ? NULL_STATE : state]))
}
