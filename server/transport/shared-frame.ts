import type { Socket } from 'node:net'
import { WebSocket } from 'ws'

/** What `ws` keeps on each socket and this module reads: absent or different in another version, it is not used. */
interface WsInternals {
  readonly _socket?: Socket
  readonly _sender?: { readonly _state?: number, readonly _queue?: readonly unknown[] }
}

/** The sender's state when it queues nothing (no compression, no Blob being read). */
const SENDER_IDLE = 0

/** An unmasked, final, binary WebSocket frame holding `payload` (RFC 6455 §5.2). */
export const frameBinary = (payload: Uint8Array): Buffer => {
  const length = payload.length
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10
  const wire = Buffer.allocUnsafe(header + length)
  wire[0] = 0x82
  if (length < 126) {
    wire[1] = length
  } else if (length < 65_536) {
    wire[1] = 126
    wire.writeUInt16BE(length, 2)
  } else {
    wire[1] = 127
    wire.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    wire.writeUInt32BE(length >>> 0, 6)
  }
  wire.set(payload, header)
  return wire
}

/**
 * Sends one message to many sockets with one framing. A broadcast hands every socket the same payload,
 * and every client joining a room gets the room's same full step 2 until the room changes; `ws.send`
 * would frame it again for each of them and write header and payload separately. This frames a payload
 * once (remembered by identity for as long as the payload lives) and writes the same bytes to each socket.
 *
 * It writes past `ws` only when `ws` holds nothing queued for that socket, so frames never reorder; in
 * any other case (or another `ws` version whose internals differ) it falls back to `ws.send`.
 */
export class SharedFrame {
  /** The frame of each payload sent while the payload lives: a storm's 40 joins of one room, interleaved with other rooms', frame it once. */
  readonly #frames = new WeakMap<Uint8Array, Buffer>()
  /** The last payload and its frame: a broadcast's sockets skip even the WeakMap. */
  #payload: Uint8Array | null = null
  #wire: Buffer | null = null

  send (ws: WebSocket, payload: Uint8Array): void {
    const { _socket: socket, _sender: sender } = ws as unknown as WsInternals
    if (socket === undefined || sender?._state !== SENDER_IDLE || sender._queue?.length !== 0 || ws.readyState !== WebSocket.OPEN) {
      ws.send(payload, { binary: true })
      return
    }
    if (payload !== this.#payload) {
      let wire = this.#frames.get(payload)
      if (wire === undefined) this.#frames.set(payload, wire = frameBinary(payload))
      this.#payload = payload
      this.#wire = wire
    }
    socket.write(this.#wire!)
  }
}
