/**
 * Signed tokens: who may open which room, and whether they may change it.
 *
 * A token is a JWT signed with HS256 and the server's `AUTH_SECRET`. Its claims:
 *   room  the room it grants: an exact name, or a prefix ending in `*` (`team-a/*`; `*` grants every room)
 *   mode  `read` (receives everything, changes nothing) or `write`
 *   exp   expiry (seconds since the epoch); a token without one is refused, and a connection opened with
 *         one ends then (plus the clock tolerance) with 4401 "token expired" (session-end.ts)
 *   sub   optional: who it was issued to, for log lines
 *
 * Sockets and long polls carry it as `?token=` (browsers cannot set headers on a WebSocket); HTTP
 * requests may use `Authorization: Bearer <token>` instead. The header wins when both are present.
 */
import type { IncomingMessage } from 'node:http'
import { errors, jwtVerify, SignJWT } from 'jose'
import { SyncError } from './errors.js'
import { checkNumber } from './option-check.js'
import type { Access, Authorize } from './access.js'

export type Mode = Access['mode']

const MODES: readonly Mode[] = ['read', 'write']

/** The token a request carries, from `Authorization: Bearer` or `?token=`; null when it carries none. */
export const tokenOf = (request: Pick<IncomingMessage, 'headers' | 'url'>): string | null => {
  const header = request.headers.authorization
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (match !== null) return match[1]!
  }
  const url = request.url ?? '/'
  const query = url.indexOf('?')
  if (query < 0) return null
  const token = new URLSearchParams(url.slice(query + 1)).get('token')
  return token === null || token === '' ? null : token
}

/** Whether a `room` claim grants `room`: equal, or a `*`-terminated prefix of it. */
export const grantsRoom = (claim: string, room: string): boolean =>
  claim.endsWith('*') ? room.startsWith(claim.slice(0, -1)) : claim === room

export interface TokenAuthOptions {
  /** The HS256 secret, at least 16 characters. */
  readonly secret: string
  /** Clock skew tolerated on `exp` and `nbf`; a session ends this long after `exp`. Default 5 s. */
  readonly clockToleranceSeconds?: number
}

const keyOf = (secret: string): Uint8Array => {
  if (typeof secret !== 'string' || secret.length < 16) throw new RangeError('secret must be a string of at least 16 characters')
  return new TextEncoder().encode(secret)
}

/**
 * An Authorize that checks signed tokens. Refusals are SyncErrors: UNAUTHENTICATED (no token, a bad
 * signature, expired, malformed claims) or FORBIDDEN (a valid token for another room).
 */
export const createTokenAuthorize = (options: TokenAuthOptions): Authorize => {
  const key = keyOf(options.secret)
  const clockTolerance = options.clockToleranceSeconds ?? 5
  checkNumber('clockToleranceSeconds', clockTolerance, { min: 0, whole: false })
  return async (request, room) => {
    const token = tokenOf(request)
    if (token === null) throw new SyncError('UNAUTHENTICATED', 'a token is required')
    let payload: Record<string, unknown>
    try {
      ({ payload } = await jwtVerify(token, key, { algorithms: ['HS256'], requiredClaims: ['exp'], clockTolerance }))
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new SyncError('UNAUTHENTICATED', 'token expired')
      if (error instanceof errors.JOSEError) throw new SyncError('UNAUTHENTICATED', `invalid token (${error.code})`)
      throw error
    }
    const { room: claim, mode } = payload
    if (typeof claim !== 'string' || claim === '') throw new SyncError('UNAUTHENTICATED', 'token has no room claim')
    if (typeof mode !== 'string' || !(MODES as readonly string[]).includes(mode)) {
      throw new SyncError('UNAUTHENTICATED', 'token mode must be "read" or "write"')
    }
    if (!grantsRoom(claim, room)) throw new SyncError('FORBIDDEN', 'token does not grant this room')
    // jwtVerify accepts the token until `exp` plus the tolerance: the session ends then too, so that a
    // client closed for expiry is refused when it comes back with the same token.
    return { mode: mode as Mode, expiresAt: ((payload.exp as number) + clockTolerance) * 1000 }
  }
}

export interface TokenRequest {
  readonly secret: string
  readonly room: string
  readonly mode: Mode
  /** Lifetime in seconds. */
  readonly ttlSeconds: number
  readonly subject?: string
  /** Issue time in seconds since the epoch. Default: now. */
  readonly now?: number
}

/** Signs a token for `room` (or a `*` prefix) in `mode`, valid for `ttlSeconds`. */
export const signToken = async (request: TokenRequest): Promise<string> => {
  if (!MODES.includes(request.mode)) throw new RangeError(`mode must be "read" or "write", got "${String(request.mode)}"`)
  if (typeof request.room !== 'string' || request.room === '') throw new RangeError('room must be a non-empty string')
  if (!Number.isFinite(request.ttlSeconds) || request.ttlSeconds <= 0) throw new RangeError(`ttlSeconds must be > 0, got ${request.ttlSeconds}`)
  const now = request.now ?? Math.floor(Date.now() / 1000)
  const jwt = new SignJWT({ room: request.room, mode: request.mode })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(request.ttlSeconds))
  if (request.subject !== undefined) jwt.setSubject(request.subject)
  return jwt.sign(keyOf(request.secret))
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

/** Parses a duration such as `90`, `45s`, `30m`, `1h`, `7d` into seconds. */
export const parseDuration = (text: string): number => {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim())
  if (match === null) throw new RangeError(`not a duration: "${text}" (use e.g. 90, 45s, 30m, 1h, 7d)`)
  const seconds = Number(match[1]) * UNITS[match[2] === '' ? 's' : match[2]!]!
  if (seconds <= 0) throw new RangeError(`duration must be positive, got "${text}"`)
  return seconds
}
