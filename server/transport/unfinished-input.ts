/**
 * How many bytes a `ws` socket holds of a message that has not arrived in full. `ws` bounds one message
 * (`maxPayload`) but not how long it may take, nor how many sockets hold one at once: a client may send
 * fragments of a 16 MiB message for as long as it answers pings. `ws` does not say what it holds, so this
 * reads its Receiver's counters (ws 8: `_bufferedBytes`, the raw bytes not parsed yet; `_totalPayloadLength`,
 * the payload announced by the frames of the message so far, the current frame's included as soon as its
 * header is read). `test/integration/hostile-input.test.ts` checks it against a real socket, so an
 * upgrade of `ws` that changes them fails there rather than silently counting nothing.
 */
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'

interface ReceiverState {
  _bufferedBytes?: number
  _totalPayloadLength?: number
  _payloadLength?: number
  _state?: number
  _opcode?: number
}

/** The Receiver's states in which the current frame's header is read and its payload is not. */
const GET_MASK = 3
const GET_DATA = 4

export const unfinishedBytes = (ws: WebSocket): number => {
  const receiver = (ws as unknown as { _receiver?: ReceiverState | null })._receiver
  if (receiver == null) return 0
  const buffered = receiver._bufferedBytes ?? 0
  let fragments = receiver._totalPayloadLength ?? 0
  // The current data frame's payload is in `buffered` as far as it has arrived, not yet in the fragments.
  if ((receiver._state === GET_MASK || receiver._state === GET_DATA) && (receiver._opcode ?? 8) < 8) fragments -= receiver._payloadLength ?? 0
  return buffered + Math.max(0, fragments)
}

/** The TCP socket under `ws`: its `data` events come before ws has parsed them, its listeners after. */
export const rawSocketOf = (ws: WebSocket): Duplex | null =>
  (ws as unknown as { _socket?: Duplex | null })._socket ?? null
