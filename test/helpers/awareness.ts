import * as encoding from 'lib0/encoding'

/** An awareness update removing `client`'s state at `clock`, as an instance sends when a socket closes. */
export const encodeAwarenessRemoval = (client: number, clock: number): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, 1)
  encoding.writeVarUint(encoder, client)
  encoding.writeVarUint(encoder, clock)
  encoding.writeVarString(encoder, 'null')
  return encoding.toUint8Array(encoder)
}
