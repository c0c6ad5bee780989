/**
 * What a close code means to someone looking at the status bar, and whether the client may try again.
 * The server's codes come from its error table (server/errors.ts, README "Close codes"); 1006 is what a
 * browser reports when the connection broke without a close frame.
 */
import { ErrorCodes } from '../server/errors.js'

/** 4400-4499 mean "do not retry" to every y-websocket client, this one included. */
export const isFinalClose = (code: number): boolean => code >= 4400 && code < 4500

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

const CAUSES: Readonly<Record<number, string>> = {
  1000: 'closed normally',
  1001: 'the server or the page went away',
  1002: 'protocol error',
  1005: 'closed without a code',
  1006: 'network: the connection broke or could not be made',
  [ErrorCodes.MESSAGE_TOO_BIG.close]: 'a message was too big',
  [ErrorCodes.INTERNAL.close]: 'server error',
  [ErrorCodes.SHUTTING_DOWN.close]: 'server restart',
  [ErrorCodes.OVERLOADED.close]: 'server overloaded, try again later',
  [ErrorCodes.CONNECTION_AGE.close]: 'connection-age limit: the server closes long-lived sockets',
  // BAD_MESSAGE and BAD_ROOM share their close code.
  [ErrorCodes.BAD_MESSAGE.close]: 'rejected: a malformed message or an invalid room name',
  [ErrorCodes.UNAUTHENTICATED.close]: 'authentication required',
  [ErrorCodes.FORBIDDEN.close]: 'forbidden: no access to this room',
  [ErrorCodes.NOT_FOUND.close]: 'not found',
  [ErrorCodes.BAD_UPDATE.close]: 'rejected: an update the server cannot decode',
  [ErrorCodes.RATE_LIMITED.close]: 'rate limited: too many messages, reconnecting after a pause',
  [ErrorCodes.RATE_LIMITED_REPEATEDLY.close]: 'rate limited again and again: stopped',
  [ErrorCodes.STORAGE_UNAVAILABLE.close]: 'storage unavailable: edits are resent on reconnect',
  [ErrorCodes.SLOW_CONSUMER.close]: 'too far behind: resyncing',
  [LocalClose.OFFLINE]: 'the browser is offline',
  [LocalClose.SILENT]: 'nothing received for too long',
  [LocalClose.CONNECT_TIMEOUT]: 'the connection did not open in time',
  [LocalClose.SWITCHED]: 'switched transport',
}

/** The cause of a close in words; the server's reason is appended when it adds something. */
export const describeClose = (code: number, reason = ''): string => {
  const known = CAUSES[code]
  const cause = known ?? (isFinalClose(code) ? 'rejected by the server' : code >= 4500 && code < 4600 ? 'server busy, try again later' : 'closed')
  const extra = reason.trim()
  return extra === '' || extra === known ? cause : `${cause} (${extra})`
}
