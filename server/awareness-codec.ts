/**
 * The awareness update as bytes, read and written without an Awareness:
 *
 *   varUint(n) · n × (varUint(clientID) · varUint(clock) · varString(state JSON))
 *
 * with the state `null` for a removal. y-protocols reads and writes these inside its Awareness; the
 * server also needs them apart from one: to raise clocks (awareness-revival.ts), check limits and echo
 * removals (room-awareness.ts), check a long-poll send before any of it applies, and track which instance
 * owns which state (bus/awareness-owners.ts), and to tell a client's echo from its news on every awareness
 * message (awareness-echo.ts, which must not decode states). This is the one reader and the one writer for
 * all of them; the load generator (bench/presence-client.ts) reads through it too.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { fieldReaders, ProtocolError } from './protocol.js'

/** One state of an awareness update: client id, clock, and the state's JSON (`null` for a removal). */
export type AwarenessEntry = readonly [client: number, clock: number, state: string]

/** The JSON of a removed state. */
export const NULL_STATE = 'null'

const { readUint, skipBytes } = fieldReaders('awareness update', (message) => new ProtocolError(message))
/** Fatal, as lib0's own reader is: a state that is not UTF-8 is one y-protocols would refuse to apply. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The entries of an awareness update one at a time, in place: ids, clocks and where each state's bytes
 * lie, with no state decoded, copied or parsed, so that a reader on the path of every awareness message
 * (awareness-echo.ts) pays for the varints and nothing else. `next()` moves to the next entry and says
 * whether there was one; where the bytes stop being an awareness update it throws ProtocolError naming
 * the field, as the constructor does for a missing count.
 */
export class AwarenessEntryCursor {
  /** The bytes being read: the update runs from where the cursor began to their end. */
  readonly bytes: Uint8Array
  /** How many entries the update says it holds. */
  readonly count: number
  /** The current entry: client id, clock, and where in `bytes` it begins, its state begins, and both end. */
  client = 0
  clock = 0
  entryStart = 0
  stateStart = 0
  end = 0
  readonly #decoder: decoding.Decoder
  #left: number

  /**
   * Reads the update `decoder` is at, which runs to the end of its bytes: a decoder of the update alone,
   * or of an awareness frame past its header (no copy, no second decoder).
   */
  constructor (decoder: decoding.Decoder) {
    this.#decoder = decoder
    this.bytes = decoder.arr
    this.count = this.#left = readUint(decoder, 'awareness state count')
  }

  next (): boolean {
    if (this.#left === 0) return false
    this.#left--
    const decoder = this.#decoder
    const start = this.entryStart = decoder.pos
    // lib0's readers as they are, the fast way; an entry they cannot read is read again to say why.
    try {
      this.client = decoding.readVarUint(decoder)
      this.clock = decoding.readVarUint(decoder)
      const size = decoding.readVarUint(decoder)
      this.stateStart = decoder.pos
      decoder.pos += size
    } catch {
      this.#refuse(start)
    }
    // Past 2^53 - 1 lib0 reads the last byte unchecked, and two ids could read as one number.
    if (decoder.pos > this.bytes.length || this.client > Number.MAX_SAFE_INTEGER || this.clock > Number.MAX_SAFE_INTEGER) this.#refuse(start)
    this.end = decoder.pos
    return true
  }

  /** True once every entry has been read and no byte follows the last. */
  get done (): boolean {
    return this.#left === 0 && this.#decoder.pos === this.bytes.length
  }

  /** Whether the current entry removes its client's state (its state is `null`). */
  get removal (): boolean {
    const { bytes, stateStart: at } = this
    // "null" in UTF-8
    return this.end - at === 4 && bytes[at] === 0x6e && bytes[at + 1] === 0x75 && bytes[at + 2] === 0x6c && bytes[at + 3] === 0x6c
  }

  /** The current state's JSON text. Throws ProtocolError for bytes that are not UTF-8. */
  state (): string {
    try {
      return utf8.decode(this.bytes.subarray(this.stateStart, this.end))
    } catch {
      throw new ProtocolError('awareness state is not UTF-8')
    }
  }

  /** Reads the entry at `start` again with readers that name the field, and throws what they say. */
  #refuse (start: number): never {
    const decoder = this.#decoder
    decoder.pos = start
    readUint(decoder, 'awareness client id')
    readUint(decoder, 'awareness clock')
    skipBytes(decoder, 'awareness state')
    throw new ProtocolError(`malformed awareness entry at byte ${start}`)
  }
}

/** The entries of an awareness update. Throws ProtocolError, naming the field, for bytes that are not one. */
export const readAwarenessEntries = (update: Uint8Array): AwarenessEntry[] => {
  const cursor = new AwarenessEntryCursor(decoding.createDecoder(update))
  const entries: AwarenessEntry[] = []
  while (cursor.next()) entries.push([cursor.client, cursor.clock, cursor.state()])
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
