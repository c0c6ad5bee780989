/**
 * Telling a stock client's echo from its own traffic, cheaply.
 *
 * A stock y-websocket client sends back every awareness frame that changed anything for it: the states
 * the room sent it, at the clocks the room sent them. Applying such an echo changes nothing, so it is
 * recognised on the bytes (ids and clocks against the room's awareness; the states' JSON is skipped,
 * never decoded or parsed) and dropped. A socket is given one echo for each awareness frame it was sent
 * (`EchoAllowance`): its echoes cost it nothing, while frames beyond that, even of known states, count
 * against its message limit like anything else it sends.
 */
import * as decoding from 'lib0/decoding'
import type { Awareness } from 'y-protocols/awareness'
import { AwarenessEntryCursor } from './awareness-codec.js'
import { MESSAGE_AWARENESS } from './protocol.js'
import { MAX_AWARENESS_STATE_BYTES } from './room-awareness.js'

/**
 * True if `frame` is an awareness message (`varUint(1) · varUint8Array(update)`) whose every entry the
 * room already holds at that clock or a newer one, so that applying it would change nothing: neither
 * y-protocols (which takes a newer clock, or a removal at the same clock of a state it holds) nor the
 * room's raising of announced states (awareness-revival.ts, which looks only at states the room does
 * not hold). False for anything else, malformed frames included: those take the ordinary path.
 */
export const isAwarenessEcho = (frame: Uint8Array, awareness: Awareness): boolean => {
  // One byte, checked first: most frames of a busy room are not awareness at all, or are echoes.
  if (frame[0] !== MESSAGE_AWARENESS) return false
  const { meta, states } = awareness
  try {
    const decoder = decoding.createDecoder(frame)
    decoding.readVarUint(decoder)
    // Exactly the frame: the update must end where the frame does.
    if (decoding.readVarUint(decoder) !== frame.length - decoder.pos) return false
    const entries = new AwarenessEntryCursor(decoder)
    if (entries.count === 0) return false
    while (entries.next()) {
      // The state's bytes are looked at, never decoded: the room holds this state or a newer one.
      const { client, clock } = entries
      if (entries.end - entries.stateStart > MAX_AWARENESS_STATE_BYTES) return false
      const known = meta.get(client)?.clock
      if (known === undefined || clock > known) return false
      if (entries.removal ? clock === known && states.has(client) : !states.has(client)) return false
    }
    return entries.done
  } catch {
    return false
  }
}

/**
 * How many echoes a socket may still send for free: one per awareness frame it was sent, up to a cap
 * (a client that stopped echoing does not save up for a flood later).
 */
export class EchoAllowance {
  #left = 0
  readonly #cap: number

  constructor (cap: number) {
    this.#cap = cap
  }

  /** Counts a frame sent to the socket; only awareness frames earn an echo. */
  sent (frame: Uint8Array): void {
    if (frame[0] === MESSAGE_AWARENESS && this.#left < this.#cap) this.#left++
  }

  /** Spends one echo; false when none is left. */
  take (): boolean {
    if (this.#left === 0) return false
    this.#left--
    return true
  }
}
