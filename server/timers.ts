/**
 * The longest delay a Node.js timer holds (2^31 - 1 ms, about 24.8 days): a longer one fires after 1 ms,
 * so a setting past it would close every socket at once instead of never.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** The longest connection age: its timer adds up to 10 % jitter. */
export const MAX_CONNECTION_AGE_MS = Math.floor(MAX_TIMER_MS / 1.1)
