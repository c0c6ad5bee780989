import { encodeAwarenessEntries, type AwarenessEntry } from '../../server/awareness-codec.js'

/** An awareness update removing `client`'s state at `clock`, as an instance sends when a socket closes. */
export const encodeAwarenessRemoval = (client: number, clock: number): Uint8Array =>
  encodeAwarenessStates([[client, clock, 'null']])

/** An awareness update holding each `[client, clock, state]`: `state` is the JSON text, 'null' a removal. */
export const encodeAwarenessStates = (entries: readonly AwarenessEntry[]): Uint8Array => encodeAwarenessEntries(entries)
