/**
 * Stock y-websocket clients announce their awareness state after a reconnect with the clock they had.
 * Every other client still holds that clock for it, or the one above it if it heard the state removed,
 * and y-protocols takes an announcement that is not newer for an old one: the client's cursor stays away
 * until it renews its state by itself 15 s later (y-websocket issue 122). That happens when the room
 * removed the state as the old connection closed, and when the client comes back to a room that has not
 * seen it: after a restart, on another instance, or once the room was unloaded.
 */
import type { Awareness } from 'y-protocols/awareness'
import { encodeAwarenessEntries, NULL_STATE, readAwarenessEntriesOrNull, type AwarenessEntry } from './awareness-codec.js'

/**
 * How far the clock of a state the room sees first is raised: past the clock the other clients hold for
 * it, and past the removal some of them heard from the instance the client left.
 */
const FIRST_SIGHT_STEP = 2

/**
 * Returns `update` with the clock of each state a client announces raised so that every other client
 * takes it: past the room's removal of a state it announces again, and past what the others may hold for
 * a state the room sees first. Returns `update` itself if it has none (or cannot be read: applying it
 * reports that). `raised(client)` hears of each state raised: the room tells the announcing client of
 * that clock as a removal (see room-awareness.ts), after which y-protocols moves the client's clock past
 * it and the client announces its state again: its later changes continue from there.
 *
 * A stock client also sends back every state it receives. Such an echo of a state removed meanwhile
 * must not bring it back: `announcedAgain(client)` says whether the sender can be announcing a removed
 * state again rather than echoing it (a socket that joined after the removal never received the state).
 */
export const reviveAwarenessStates = (
  awareness: Awareness,
  update: Uint8Array,
  announcedAgain: (client: number) => boolean = () => true,
  raised: (client: number) => void = () => {},
): Uint8Array => {
  const entries = readAwarenessEntriesOrNull(update)
  const revived = entries === null ? null : reviveEntries(awareness, entries, announcedAgain, raised)
  return revived === null ? update : encodeAwarenessEntries(revived)
}

/** `reviveAwarenessStates` on entries already read: the raised entries, or null if none needs raising. */
export const reviveEntries = (
  awareness: Awareness,
  entries: readonly AwarenessEntry[],
  announcedAgain: (client: number) => boolean = () => true,
  raised: (client: number) => void = () => {},
): AwarenessEntry[] | null => {
  const revived = ([client, clock, state]: AwarenessEntry): number | null => {
    if (state === NULL_STATE) return null
    const known = awareness.meta.get(client)
    if (known === undefined) return clock + FIRST_SIGHT_STEP
    return known.clock >= clock && !awareness.states.has(client) && announcedAgain(client) ? known.clock + 1 : null
  }
  // Every awareness message passes here (each cursor move): most need nothing, and are not copied.
  const clocks = entries.map(revived)
  if (clocks.every((clock) => clock === null)) return null
  return entries.map((entry, i) => {
    const to = clocks[i]
    if (to === null || to === undefined) return entry
    raised(entry[0])
    return [entry[0], to, entry[2]]
  })
}

/**
 * A room's order of joins and awareness removals, which tells an announcement from an echo: a socket
 * that joined after a state was removed never received that state, so it can only be announcing it.
 */
export class AwarenessRevival {
  readonly #awareness: Awareness
  #seq = 0
  readonly #joinedAt = new WeakMap<object, number>()
  readonly #removedAt = new Map<number, number>()

  constructor (awareness: Awareness) {
    this.#awareness = awareness
  }

  /** Records that `peer` joined the room now. */
  joined (peer: object): void {
    this.#joinedAt.set(peer, ++this.#seq)
  }

  /** Records an awareness change of the room, whatever its origin. */
  changed (updated: readonly number[], removed: readonly number[]): void {
    for (const id of removed) this.#removedAt.set(id, ++this.#seq)
    if (this.#removedAt.size > 0) for (const id of updated) this.#removedAt.delete(id)
  }

  /**
   * `reviveEntries` for an update from `from`, a joined peer, or null for a client without a
   * socket (long-polling: the project's provider, which never echoes others' states).
   */
  revive (entries: readonly AwarenessEntry[], from: object | null, raised: (client: number) => void): AwarenessEntry[] | null {
    if (from === null) return reviveEntries(this.#awareness, entries, () => true, raised)
    const joined = this.#joinedAt.get(from) ?? 0
    return reviveEntries(this.#awareness, entries, (client) => (this.#removedAt.get(client) ?? Infinity) < joined, raised)
  }
}
