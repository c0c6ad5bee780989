/**
 * Who may open which room, decided the same way by every transport (WebSocket, long poll, HTTP API):
 * a usable room name (BAD_ROOM), an allowed Origin against cross-site WebSocket hijacking (BAD_ORIGIN),
 * then the `Authorize` seam: signed tokens (tokens.ts) or the embedder's own check.
 */
import type { IncomingMessage } from 'node:http'
import { SyncError } from './errors.js'
import { NUMBER_OPTIONS } from './options.js'

export interface Access {
  /** `read`: receives everything, may change nothing. */
  readonly mode: 'read' | 'write'
  /**
   * When the access ends, in ms since the epoch (signed tokens: `exp` plus the clock tolerance); unset,
   * it lasts as long as the connection. A socket is closed with 4401 "token expired" then, and a held
   * long poll answered 401 (see session-end.ts).
   */
  readonly expiresAt?: number
}

/** Decides who may open `room`. Throw a SyncError (UNAUTHENTICATED, FORBIDDEN, ...) to refuse. */
export type Authorize = (request: IncomingMessage, room: string) => Access | Promise<Access>

/**
 * `authorize`, whose answers are checked: an `expiresAt` that is no time is the embedder's bug, and
 * rejects with a TypeError (the client gets INTERNAL, and the log says why) rather than leave a
 * connection without an end it was meant to have.
 */
export const checkedAuthorize = (authorize: Authorize): Authorize => async (request, room) => {
  const access = await authorize(request, room)
  if (access.expiresAt !== undefined && !Number.isFinite(access.expiresAt)) {
    throw new TypeError(`authorize returned expiresAt ${String(access.expiresAt)}: it takes ms since the epoch, or undefined`)
  }
  return access
}


/**
 * The characters of a URL path (RFC 3986 `pchar` plus `/`), with `%` only as a well-formed escape:
 * the room is the raw path, and browsers percent-encode spaces and non-ASCII there.
 */
const ROOM_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})+$/

/** Throws BAD_ROOM unless `name` is a usable room name; the message says why. */
export const validateRoomName = (name: string, maxLength: number = NUMBER_OPTIONS.maxRoomNameLength.default): void => {
  if (name.length === 0) throw new SyncError('BAD_ROOM', 'room name is empty')
  if (name.length > maxLength) throw new SyncError('BAD_ROOM', `room name is longer than ${maxLength} characters`)
  if (!ROOM_NAME.test(name)) {
    throw new SyncError('BAD_ROOM', 'room name may hold only URL path characters (letters, digits, -._~!$&\'()*+,;=:@/ and %XX escapes)')
  }
}

/** Normalizes `https://Example.com:443/` to `https://example.com`; throws RangeError for a non-URL. */
export const normalizeOrigin = (origin: string): string => {
  let url: URL
  try {
    url = new URL(origin.trim())
  } catch {
    throw new RangeError(`not an origin: "${origin}"`)
  }
  if (url.origin === 'null') throw new RangeError(`not an origin: "${origin}"`)
  return url.origin
}

/**
 * Throws BAD_ORIGIN when a browser request comes from a page not in `allowed` (normalized origins; null
 * allows every origin). A request without an Origin header is not from a browser page, and a non-browser
 * client could send any Origin anyway: it passes, and tokens are what keep it out.
 */
export const checkOrigin = (origin: string | undefined, allowed: ReadonlySet<string> | null): void => {
  if (allowed === null || origin === undefined) return
  let normalized: string
  try {
    normalized = normalizeOrigin(origin)
  } catch {
    throw new SyncError('BAD_ORIGIN', 'origin not allowed')
  }
  if (!allowed.has(normalized)) throw new SyncError('BAD_ORIGIN', `origin ${normalized} not allowed`)
}
