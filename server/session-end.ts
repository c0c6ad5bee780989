/**
 * Sessions that end with their token. `authorize` may grant access until a time (`Access.expiresAt`;
 * signed tokens grant it until their `exp` plus the clock tolerance): a socket opened with it is closed
 * with 4401 "token expired" then, a long poll held then is answered 401 with the same code, and nothing
 * the room sends afterwards reaches either. The client needs a new token to come back.
 */
import { SyncError } from './errors.js'

/** The longest delay a Node.js timer holds (24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** The error a connection ends with when its access runs out. */
export const tokenExpired = (): SyncError => new SyncError('UNAUTHENTICATED', 'token expired')

/** Whether access granted until `expiresAt` (ms since the epoch; undefined for ever) has run out. */
export const hasExpired = (expiresAt: number | undefined, now = Date.now()): boolean =>
  expiresAt !== undefined && now >= expiresAt

/**
 * Calls `end` once at `expiresAt` (ms since the epoch), however far away, and returns a function that
 * cancels it. The timer does not keep the process alive.
 */
export const atExpiry = (expiresAt: number, end: () => void): () => void => {
  if (!Number.isFinite(expiresAt)) throw new RangeError(`expiresAt must be a time in ms since the epoch, got ${expiresAt}`)
  let timer: NodeJS.Timeout | undefined
  const schedule = (): void => {
    const delay = expiresAt - Date.now()
    if (delay <= 0) return end()
    timer = setTimeout(schedule, Math.min(delay, MAX_TIMER_MS))
    timer.unref()
  }
  schedule()
  return () => clearTimeout(timer)
}
