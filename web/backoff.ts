/**
 * When to try again after a lost connection.
 *
 * The stock y-websocket client retries after 100 ms, 200 ms, ... up to 2.5 s with no randomness, so the
 * thousands of clients an instance restart cuts at the same instant come back at the same instants, again
 * and again. Here the ceiling doubles per failed attempt up to `maxMs`, and the delay is drawn uniformly
 * from the upper half of the ceiling ("equal jitter"): it still grows, yet two clients cut together
 * return at different times.
 */
export interface BackoffOptions {
  /** Ceiling of the first retry. Default 500 ms. */
  readonly initialMs?: number
  /** Largest ceiling. Default 15 s. */
  readonly maxMs?: number
}

export interface Backoff {
  readonly initialMs: number
  readonly maxMs: number
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 15_000 }

/** Checks and fills in backoff options; throws RangeError for impossible values. */
export const backoffOptions = (options: BackoffOptions = {}): Backoff => {
  const initialMs = options.initialMs ?? DEFAULT_BACKOFF.initialMs
  const maxMs = options.maxMs ?? Math.max(DEFAULT_BACKOFF.maxMs, initialMs)
  if (!Number.isFinite(initialMs) || initialMs < 1) throw new RangeError(`backoff.initialMs must be >= 1, got ${initialMs}`)
  if (!Number.isFinite(maxMs) || maxMs < initialMs) throw new RangeError(`backoff.maxMs must be >= initialMs (${initialMs}), got ${maxMs}`)
  return { initialMs, maxMs }
}

/** The ceiling of retry number `attempt` (0 for the first retry after a connection was lost). */
export const backoffCeiling = (attempt: number, backoff: Backoff): number =>
  Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(Math.max(0, attempt), 30))

/** The delay before retry number `attempt`: uniform in [ceiling / 2, ceiling]. `random` returns [0, 1). */
export const backoffDelay = (attempt: number, backoff: Backoff, random: () => number = Math.random): number => {
  const ceiling = backoffCeiling(attempt, backoff)
  return Math.round(ceiling / 2 + random() * (ceiling / 2))
}
