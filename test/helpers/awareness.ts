import * as encoding from 'lib0/encoding'

/** An awareness update removing `client`'s state at `clock`, as an instance sends when a socket closes. */
export const encodeAwarenessRemoval = (client: number, clock: number): Uint8Array =>
  encodeAwarenessStates([[client, clock, 'null']])

/** An awareness update holding each `[client, clock, state]`: `state` is the JSON text, 'null' a removal. */
export const encodeAwarenessStates = (entries: ReadonlyArray<readonly [number, number, string]>): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, entries.length)
  for (const [client, clock, state] of entries) {
    encoding.writeVarUint(encoder, client)
    encoding.writeVarUint(encoder, clock)
    encoding.writeVarString(encoder, state)
  }
  return encoding.toUint8Array(encoder)
}
