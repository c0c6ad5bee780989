/**
 * The client side of the y-websocket protocol as pure functions over frames: build the frames a client
 * sends, and read one frame from the server into the document and awareness, returning the reply (if
 * any). A frame is `varUint(type) · payload`: 0 sync, 1 awareness, 2 auth, 3 query awareness.
 */
import type * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as authProtocol from 'y-protocols/auth'
import * as awarenessProtocol from 'y-protocols/awareness'
import { MESSAGE_AUTH, MESSAGE_AWARENESS, MESSAGE_QUERY_AWARENESS, MESSAGE_SYNC } from '../server/protocol.js'

const encodeMessage = (type: number, write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, type)
  write(encoder)
  return encoding.toUint8Array(encoder)
}

export const syncStep1Frame = (doc: Y.Doc): Uint8Array =>
  encodeMessage(MESSAGE_SYNC, (encoder) => syncProtocol.writeSyncStep1(encoder, doc))

export const updateFrame = (update: Uint8Array): Uint8Array =>
  encodeMessage(MESSAGE_SYNC, (encoder) => syncProtocol.writeUpdate(encoder, update))

export const awarenessFrame = (awareness: awarenessProtocol.Awareness, clients: readonly number[]): Uint8Array =>
  encodeMessage(MESSAGE_AWARENESS, (encoder) =>
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, [...clients])))

export interface FrameResult {
  /** The frame to send back, if the message asks for one (sync step 1, query awareness). */
  readonly reply: Uint8Array | null
  /** It was sync step 2: the server's answer to our step 1, so we hold everything it had. */
  readonly syncStep2: boolean
}

/**
 * Applies one server frame to `doc`/`awareness` with `origin` as the transaction origin. Unknown message
 * types are skipped, as stock clients do. Throws when the frame cannot be decoded.
 */
export const readFrame = (
  frame: Uint8Array,
  doc: Y.Doc,
  awareness: awarenessProtocol.Awareness,
  origin: unknown,
  onPermissionDenied: (reason: string) => void,
): FrameResult => {
  const decoder = decoding.createDecoder(frame)
  const encoder = encoding.createEncoder()
  let syncStep2 = false
  switch (decoding.readVarUint(decoder)) {
    case MESSAGE_SYNC: {
      encoding.writeVarUint(encoder, MESSAGE_SYNC)
      syncStep2 = syncProtocol.readSyncMessage(decoder, encoder, doc, origin) === syncProtocol.messageYjsSyncStep2
      break
    }
    case MESSAGE_AWARENESS:
      awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoder), origin)
      break
    case MESSAGE_QUERY_AWARENESS:
      encoding.writeVarUint(encoder, MESSAGE_AWARENESS)
      encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, [...awareness.getStates().keys()]))
      break
    case MESSAGE_AUTH:
      authProtocol.readAuthMessage(decoder, doc, (_doc, reason) => onPermissionDenied(reason))
      break
    default:
      break
  }
  return { reply: encoding.length(encoder) > 1 ? encoding.toUint8Array(encoder) : null, syncStep2 }
}
