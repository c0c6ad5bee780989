/**
 * The y-websocket wire protocol, as pure functions over bytes.
 *
 * A frame holds one message: `varUint(type) · payload` (lib0 encoding). y-websocket 3.x reads only the
 * first message of a frame, so we never pack two into one.
 *
 *   0 sync        varUint(subtype) · varUint8Array
 *                   0 step 1: the sender's state vector; the receiver answers with step 2
 *                   1 step 2: the update the other side lacks
 *                   2 update: an incremental update
 *   1 awareness   varUint8Array(awareness update)
 *   2 auth        varUint(0) · varString(reason): permission denied
 *   3 query awareness (no payload): the receiver answers with every awareness state it knows
 *
 * The handshake: on connect the server sends step 1 and the room's awareness states; the client answers
 * step 1 with step 2 (what the server lacks) and sends its own step 1, which the server answers with
 * step 2 (what the client lacks). After that both sides send updates as they happen.
 *
 * Decoding never trusts lengths: a truncated or oversized field throws a ProtocolError, which the
 * transport turns into a close of that one connection.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

export const MESSAGE_SYNC = 0
export const MESSAGE_AWARENESS = 1
export const MESSAGE_AUTH = 2
export const MESSAGE_QUERY_AWARENESS = 3

export const SYNC_STEP1 = 0
export const SYNC_STEP2 = 1
export const SYNC_UPDATE = 2

const AUTH_PERMISSION_DENIED = 0

export type Message =
  | { readonly type: 'sync-step1'; readonly stateVector: Uint8Array }
  | { readonly type: 'sync-step2'; readonly update: Uint8Array }
  | { readonly type: 'sync-update'; readonly update: Uint8Array }
  | { readonly type: 'awareness'; readonly update: Uint8Array }
  | { readonly type: 'auth'; readonly denied: boolean; readonly reason: string }
  | { readonly type: 'query-awareness' }

/** A frame that does not follow the protocol. `message` says what was wrong, for the log and the close reason. */
export class ProtocolError extends Error {
  override readonly name: string = 'ProtocolError'
}

/**
 * Field readers that never trust a length: a missing byte, an unterminated varint or a length past the
 * end throws an error made by `fail`, naming the field (`where` says what is being read: frame, body).
 * Byte fields are views into the input, not copies. Shared by every wire format of the project.
 */
export const fieldReaders = (where: string, fail: (message: string) => Error) => {
  const readUint = (decoder: decoding.Decoder, what: string): number => {
    if (!decoding.hasContent(decoder)) throw fail(`truncated ${where}: missing ${what}`)
    const start = decoder.pos
    let value: number
    try {
      value = decoding.readVarUint(decoder)
    } catch {
      throw fail(`malformed varint in ${what} at byte ${start}`)
    }
    // lib0 reads the last byte unchecked: past 2^53 - 1, a number no longer holds the value exactly.
    if (!Number.isSafeInteger(value)) throw fail(`${what} at byte ${start} is past 2^53 - 1`)
    return value
  }
  /** Moves past a byte field without making a view of it; returns where it begins (it ends at decoder.pos). */
  const skipBytes = (decoder: decoding.Decoder, what: string): number => {
    const length = readUint(decoder, `${what} length`)
    const start = decoder.pos
    const remaining = decoder.arr.length - start
    if (length > remaining) throw fail(`truncated ${where}: ${what} says ${length} bytes, ${remaining} left`)
    decoder.pos += length
    return start
  }
  const readBytes = (decoder: decoding.Decoder, what: string): Uint8Array => {
    const start = skipBytes(decoder, what)
    return decoder.arr.subarray(start, decoder.pos)
  }
  return { readUint, skipBytes, readBytes }
}

const { readUint, readBytes } = fieldReaders('frame', (message) => new ProtocolError(message))

/**
 * Decodes one frame. Returned byte fields are views into `frame` (no copy). Bytes after the first message
 * are ignored, as the reference client and server do.
 */
export const decodeMessage = (frame: Uint8Array): Message => {
  const decoder = decoding.createDecoder(frame)
  const type = readUint(decoder, 'message type')
  switch (type) {
    case MESSAGE_SYNC: {
      const subtype = readUint(decoder, 'sync message type')
      switch (subtype) {
        case SYNC_STEP1: return { type: 'sync-step1', stateVector: readBytes(decoder, 'state vector') }
        case SYNC_STEP2: return { type: 'sync-step2', update: readBytes(decoder, 'update') }
        case SYNC_UPDATE: return { type: 'sync-update', update: readBytes(decoder, 'update') }
        default: throw new ProtocolError(`unknown sync message type ${subtype}`)
      }
    }
    case MESSAGE_AWARENESS:
      return { type: 'awareness', update: readBytes(decoder, 'awareness update') }
    case MESSAGE_AUTH: {
      const kind = readUint(decoder, 'auth message type')
      const reason = new TextDecoder('utf-8', { fatal: false }).decode(readBytes(decoder, 'auth reason'))
      return { type: 'auth', denied: kind === AUTH_PERMISSION_DENIED, reason }
    }
    case MESSAGE_QUERY_AWARENESS:
      return { type: 'query-awareness' }
    default:
      throw new ProtocolError(`unknown message type ${type}`)
  }
}

const frameOf = (write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder()
  write(encoder)
  return encoding.toUint8Array(encoder)
}

const syncFrame = (subtype: number, bytes: Uint8Array): Uint8Array => frameOf((encoder) => {
  encoding.writeVarUint(encoder, MESSAGE_SYNC)
  encoding.writeVarUint(encoder, subtype)
  encoding.writeVarUint8Array(encoder, bytes)
})

export const encodeSyncStep1 = (stateVector: Uint8Array): Uint8Array => syncFrame(SYNC_STEP1, stateVector)
export const encodeSyncStep2 = (update: Uint8Array): Uint8Array => syncFrame(SYNC_STEP2, update)
export const encodeSyncUpdate = (update: Uint8Array): Uint8Array => syncFrame(SYNC_UPDATE, update)

export const encodeAwareness = (update: Uint8Array): Uint8Array => frameOf((encoder) => {
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS)
  encoding.writeVarUint8Array(encoder, update)
})

export const encodePermissionDenied = (reason: string): Uint8Array => frameOf((encoder) => {
  encoding.writeVarUint(encoder, MESSAGE_AUTH)
  encoding.writeVarUint(encoder, AUTH_PERMISSION_DENIED)
  encoding.writeVarString(encoder, reason)
})

export const encodeQueryAwareness = (): Uint8Array => frameOf((encoder) => {
  encoding.writeVarUint(encoder, MESSAGE_QUERY_AWARENESS)
})
