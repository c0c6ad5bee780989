/**
 * A Channel over a WebSocket: the browser's, or any implementation with the same shape (`ws` in Node).
 */
import type { Channel, ChannelEvents, ChannelFactory, ChannelTarget } from './channel.js'

/** The part of the WebSocket API a channel uses. */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number, reason: string }) => void) | null
  onerror: ((event: unknown) => void) | null
  send (data: Uint8Array): void
  close (code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string) => WebSocketLike

export interface WebSocketChannelOptions {
  /** Default: the global `WebSocket`. Pass `ws`'s class in Node. */
  readonly WebSocket?: WebSocketConstructor
}

const OPEN = 1

/**
 * The room as it goes into a URL path, the way y-websocket writes it (as is; the URL parser then
 * percent-encodes spaces, `<`, `>`, unicode...), so that a stock client and this one name the same server
 * room; the long-poll channel (`pollUrl`) does the same. Escaped, where a stock client cannot reach the
 * room at all: `?` and `#`, which would end the path; `[`, `]`, `\`, `^`, `|` and a `%` that starts no
 * escape, which the server refuses in a room name (and `\` would become `/`); `.` and `..` as a whole
 * segment, which the URL parser would resolve away (`a/../b` is room `b`), even written `%2E`: each dot
 * becomes `%252E`.
 */
export const roomPath = (room: string): string => room
  .replace(/[?#[\]\\^|]|%(?![0-9A-Fa-f]{2})/g, (c) => encodeURIComponent(c))
  .split('/')
  .map((segment) => /^(?:\.|%2e){1,2}$/i.test(segment) ? segment.replace(/\.|%2e/gi, '%252E') : segment)
  .join('/')

/** The URL of a room: `<serverUrl>/<room path>?<params>`. */
export const roomUrl = (target: Pick<ChannelTarget, 'serverUrl' | 'room' | 'params'>): string => {
  const base = target.serverUrl.replace(/\/+$/, '')
  const query = new URLSearchParams(target.params).toString()
  return `${base}/${roomPath(target.room)}${query === '' ? '' : `?${query}`}`
}

/** The room exactly as the server sees it in a request path (percent-encoded by the URL parser). */
export const serverRoomName = (room: string): string => new URL(`ws://h/${roomPath(room)}`).pathname.slice(1)

const toBytes = (data: unknown): Uint8Array | null => {
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (data instanceof Uint8Array) return data
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return null
}

/** A channel that fails at once, as a connection that could not be made. */
const unavailable = (events: ChannelEvents): Channel => {
  let done = false
  const fail = (): void => {
    if (done) return
    done = true
    events.close(1006, 'WebSocket is not available')
  }
  queueMicrotask(fail)
  return { kind: 'websocket', send: () => {}, close: fail }
}

/** Makes channels over WebSocket. */
export const websocketChannel = (options: WebSocketChannelOptions = {}): ChannelFactory => {
  return (target: ChannelTarget, events: ChannelEvents): Channel => {
    // Looked up per connection: some environments remove WebSocket, and then every attempt fails like a
    // refused connection (1006), so a fallback channel moves on to long-polling.
    const Impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (typeof Impl !== 'function') return unavailable(events)
    let done = false
    const finish = (code: number, reason: string): void => {
      if (done) return
      done = true
      socket.onopen = null
      socket.onmessage = null
      socket.onclose = null
      // A socket closed while connecting reports an error; with no listener, Node's `ws` would throw.
      socket.onerror = () => {}
      events.close(code, reason)
    }
    const socket = new Impl(roomUrl(target))
    socket.binaryType = 'arraybuffer'
    socket.onopen = () => { if (!done) events.open() }
    socket.onmessage = (event) => {
      if (done) return
      const frame = toBytes(event.data)
      // Text frames are not part of the protocol: ignore them rather than misread them.
      if (frame !== null) events.message(frame)
    }
    socket.onclose = (event) => finish(event.code, event.reason)
    // An error is always followed by a close event, which carries the code.
    socket.onerror = () => {}
    return {
      kind: 'websocket',
      send: (frame) => {
        if (!done && socket.readyState === OPEN) socket.send(frame)
      },
      close: (code = 1000, reason = '') => {
        if (done) return
        try {
          // Browsers accept only 1000 and 3000-4999 from a client; the code we report is ours either way.
          socket.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason)
        } catch {
          // Already closing.
        }
        finish(code, reason)
      },
    }
  }
}
