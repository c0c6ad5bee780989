/**
 * What a close code means to someone looking at the status bar, and whether the client may try again.
 * The server's codes come from its error table (server/errors.ts, README "Close codes"); 1006 is what a
 * browser reports when the connection broke without a close frame.
 */
import { ErrorCodes, type ErrorCode } from '../server/errors.js'

/** 4400-4499 mean "do not retry" to every y-websocket client, this one included. */
export const isFinalClose = (code: number): boolean => code >= 4400 && code < 4500

/** A close for a token that ran out (reason `token expired`, from a socket or a long-poll answer). */
export const isTokenExpiry = (code: number, reason: string): boolean =>
  code === ErrorCodes.UNAUTHENTICATED.close && reason.includes('token expired')

/** Close codes the provider uses for closes it decided itself (never sent by a server). */
export const LocalClose = {
  /** `disconnect()` or `destroy()`. */
  REQUESTED: 1000,
  /** The browser says it is offline. */
  OFFLINE: 4990,
  /** Nothing arrived for too long (a half-open connection, e.g. after the laptop slept). */
  SILENT: 4991,
  /** The connection did not open in time. */
  CONNECT_TIMEOUT: 4992,
  /** Moved to a better transport (back to WebSocket from the fallback). */
  SWITCHED: 4993,
} as const

/** What the server's errors mean to someone looking at the status bar, by error code. */
const SERVER_CAUSES: Readonly<Partial<Record<ErrorCode, string>>> = {
  MESSAGE_TOO_BIG: 'a message was too big',
  INTERNAL: 'server error',
  SHUTTING_DOWN: 'server restart',
  OVERLOADED: 'server overloaded, try again later',
  CONNECTION_AGE: 'connection-age limit: the server closes long-lived sockets',
  // BAD_ROOM closes with the code of BAD_MESSAGE.
  BAD_MESSAGE: 'rejected: a malformed message or an invalid room name',
  UNAUTHENTICATED: 'authentication required',
  FORBIDDEN: 'forbidden: no access to this room',
  NOT_FOUND: 'not found',
  BAD_UPDATE: 'rejected: an update the server cannot decode',
  RATE_LIMITED: 'rate limited: too many messages, reconnecting after a pause',
  RATE_LIMITED_REPEATEDLY: 'rate limited again and again: stopped',
  STORAGE_UNAVAILABLE: 'storage unavailable: edits are resent on reconnect',
  SLOW_CONSUMER: 'too far behind: resyncing',
}

const CAUSES: ReadonlyMap<number, string> = new Map([
  [1000, 'closed normally'],
  [1001, 'the server or the page went away'],
  [1002, 'protocol error'],
  [1005, 'closed without a code'],
  [1006, 'network: the connection broke or could not be made'],
  ...Object.entries(SERVER_CAUSES).map(([code, text]) => [ErrorCodes[code as ErrorCode].close, text] as const),
  [LocalClose.OFFLINE, 'the browser is offline'],
  [LocalClose.SILENT, 'nothing received for too long'],
  [LocalClose.CONNECT_TIMEOUT, 'the connection did not open in time'],
  [LocalClose.SWITCHED, 'switched transport'],
])

/** The cause of a close in words; the server's reason is appended when it adds something. */
export const describeClose = (code: number, reason = ''): string => {
  const known = CAUSES.get(code)
  const cause = known ?? (isFinalClose(code) ? 'rejected by the server' : code >= 4500 && code < 4600 ? 'server busy, try again later' : 'closed')
  const extra = reason.trim()
  return extra === '' || extra === known ? cause : `${cause} (${extra})`
}
