import { pino, type DestinationStream, type Logger } from 'pino'

export type { Logger }

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** Cloud Logging reads `severity` and `message`; pino's numeric `level` means nothing to it. */
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG', debug: 'DEBUG', info: 'INFO', warn: 'WARNING', error: 'ERROR', fatal: 'CRITICAL',
}

/** A JSON logger whose lines Cloud Logging understands. */
export const createLogger = (level: LogLevel = 'info', destination?: DestinationStream): Logger => pino({
  level,
  messageKey: 'message',
  base: undefined,
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: {
    level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }),
  },
}, destination)

/**
 * A request URL as it may be logged: its path, and its `op` when that is one of the long-poll ops. Tokens
 * travel as `?token=`, and a client may put one anywhere in the query: no part of a query is logged.
 */
export const urlForLog = (url: string | undefined): string => {
  const raw = url ?? '/'
  const query = raw.indexOf('?')
  if (query < 0) return raw
  const op = new URLSearchParams(raw.slice(query + 1)).get('op')
  return `${raw.slice(0, query)}?${op === 'poll' || op === 'send' ? `op=${op}` : '...'}`
}
