/**
 * Every error a client can see, with a stable code, the WebSocket close code it maps to and the HTTP
 * status it maps to. README's tables are written from this list, and the web client reads it too: this
 * module stays free of Node APIs so that the browser bundle can import it.
 *
 * Close codes follow what the stock y-websocket client does with them: 4400-4499 are final (it stops
 * reconnecting), everything else is transient (it reconnects after ~100 ms, backing off to 2.5 s).
 */
export const ErrorCodes = {
  BAD_MESSAGE: { close: 4400, status: 400, text: 'malformed message' },
  BAD_UPDATE: { close: 4422, status: 422, text: 'update cannot be decoded' },
  CONFLICTING_UPDATE: { close: 4409, status: 409, text: 'update holds other content under ids the room holds' },
  BAD_ROOM: { close: 4400, status: 400, text: 'invalid room name' },
  UNAUTHENTICATED: { close: 4401, status: 401, text: 'authentication required' },
  FORBIDDEN: { close: 4403, status: 403, text: 'forbidden' },
  BAD_ORIGIN: { close: 4403, status: 403, text: 'origin not allowed' },
  NOT_FOUND: { close: 4404, status: 404, text: 'not found' },
  METHOD_NOT_ALLOWED: { close: 4405, status: 405, text: 'method not allowed' },
  MESSAGE_TOO_BIG: { close: 1009, status: 413, text: 'message too big' },
  RATE_LIMITED: { close: 4529, status: 429, text: 'too many messages; reconnect later' },
  RATE_LIMITED_REPEATEDLY: { close: 4429, status: 429, text: 'too many messages, again and again' },
  SLOW_CONSUMER: { close: 4508, status: 503, text: 'too far behind; resync' },
  OVERLOADED: { close: 1013, status: 503, text: 'server overloaded, try again later' },
  STORAGE_UNAVAILABLE: { close: 4503, status: 503, text: 'storage unavailable' },
  CONNECTION_AGE: { close: 4000, status: 503, text: 'connection age limit reached' },
  SHUTTING_DOWN: { close: 1012, status: 503, text: 'server restarting' },
  INPUT_TIMEOUT: { close: 1008, status: 408, text: 'input not complete in time' },
  INTERNAL: { close: 1011, status: 500, text: 'internal error' },
} as const satisfies Record<string, { close: number; status: number; text: string }>

export type ErrorCode = keyof typeof ErrorCodes

/** An error that fails one connection or one request, never the process. */
export class SyncError extends Error {
  override readonly name = 'SyncError'
  readonly code: ErrorCode
  readonly closeCode: number
  readonly status: number

  constructor (code: ErrorCode, detail?: string) {
    super(detail ?? ErrorCodes[code].text)
    this.code = code
    this.closeCode = ErrorCodes[code].close
    this.status = ErrorCodes[code].status
  }
}

/** The close reason sent on the wire: at most 123 bytes of UTF-8, as RFC 6455 allows. */
export const closeReason = (text: string): string => {
  const bytes = new TextEncoder().encode(text)
  if (bytes.length <= 123) return text
  return new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD+$/, '') + '...'
}
