/**
 * The two client dialects the benchmark speaks, as pure functions over bytes.
 *
 * y-websocket (this project and the reference server): a frame is `varUint(type) · payload`; the room is
 * the URL path. On connect the server sends sync step 1; the client answers with step 2 and sends its own
 * step 1, which the server answers with step 2 (the whole document for an empty client).
 *
 * Hocuspocus: every frame starts with `varString(documentName)`, then the same message types plus its
 * own (4 sync reply, 8 sync status, ...). The client authenticates first (`2 · 0 · varString(token)`);
 * the server queues what follows until it answered with "authenticated", then answers our step 1 with
 * step 2 and its own step 1 (as a sync reply).
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

export type Dialect = 'y-websocket' | 'hocuspocus'

export type Incoming =
  | { readonly kind: 'step1', readonly payload: Uint8Array }
  | { readonly kind: 'step2' | 'update', readonly payload: Uint8Array }
  | { readonly kind: 'other' }

export interface Codec {
  /** Frames a client sends right after the socket opened: our step 1 (and, for Hocuspocus, auth first). */
  hello (stateVector: Uint8Array): Uint8Array[]
  step2 (update: Uint8Array): Uint8Array
  update (update: Uint8Array): Uint8Array
  decode (frame: Uint8Array): Incoming
}

const EMPTY_SV = new Uint8Array([0])

const frame = (room: string | null, write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder()
  if (room !== null) encoding.writeVarString(encoder, room)
  write(encoder)
  return encoding.toUint8Array(encoder)
}

const sync = (room: string | null, subtype: number, bytes: Uint8Array): Uint8Array => frame(room, (encoder) => {
  encoding.writeVarUint(encoder, 0)
  encoding.writeVarUint(encoder, subtype)
  encoding.writeVarUint8Array(encoder, bytes)
})

const decodeSync = (decoder: decoding.Decoder): Incoming => {
  const subtype = decoding.readVarUint(decoder)
  const payload = decoding.readVarUint8Array(decoder)
  if (subtype === 0) return { kind: 'step1', payload }
  if (subtype === 1) return { kind: 'step2', payload }
  if (subtype === 2) return { kind: 'update', payload }
  return { kind: 'other' }
}

export const makeCodec = (dialect: Dialect, room: string): Codec => {
  const address = dialect === 'hocuspocus' ? room : null
  return {
    hello: (stateVector = EMPTY_SV) => dialect === 'hocuspocus'
      ? [frame(address, (encoder) => {
          encoding.writeVarUint(encoder, 2)
          encoding.writeVarUint(encoder, 0)
          encoding.writeVarString(encoder, 'bench')
        }), sync(address, 0, stateVector)]
      : [sync(null, 0, stateVector)],
    step2: (update) => sync(address, 1, update),
    update: (update) => sync(address, 2, update),
    decode: (bytes) => {
      const decoder = decoding.createDecoder(bytes)
      if (address !== null) decoding.readVarString(decoder)
      const type = decoding.readVarUint(decoder)
      // Hocuspocus sends its own step 1 as a "sync reply" (4); the payload is a plain sync message.
      if (type === 0 || (type === 4 && address !== null)) return decodeSync(decoder)
      return { kind: 'other' }
    },
  }
}
