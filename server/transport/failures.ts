/**
 * How an error becomes an answer: one mapping for HTTP requests (`answerHttpError`), one for sockets
 * (`socketFailure`), and one rule for logging both. Any SyncError answers with its code (errors.ts); a
 * protocol error is BAD_MESSAGE; anything else is INTERNAL, logged with its stack, its detail never sent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { SyncError, type ErrorCode } from '../errors.js'
import { ProtocolError } from '../protocol.js'
import { urlForLog } from '../log.js'
import { ClientGone, connectionAfter } from './body-reader.js'

/** The SyncError an error answers as. */
export const toSyncError = (error: unknown): SyncError => {
  if (error instanceof SyncError) return error
  if (error instanceof ProtocolError) return new SyncError('BAD_MESSAGE', error.message)
  return new SyncError('INTERNAL')
}

/**
 * The one log rule: an internal error at error level with its stack; a refusal for now (503, 429) at
 * info, since the client retries; any other refusal at warn. `fields` say where (room, peer, a URL as
 * `urlForLog` gives it), never a URL's query string, which may carry a token.
 */
export const logFailure = (log: Logger, failure: SyncError, error: unknown, fields: Record<string, unknown>, subject: string): void => {
  const entry = { ...fields, code: failure.code, detail: failure.message }
  if (failure.code === 'INTERNAL') log.error({ ...entry, err: error }, `${subject} failed`)
  else if (failure.status === 503 || failure.status === 429) log.info(entry, `${subject} refused for now`)
  else log.warn(entry, `${subject} refused`)
}

export interface HttpFailureOptions {
  readonly log: Logger
  /** Hears of every error answered (metrics). */
  readonly onError?: (code: ErrorCode) => void
  /** What the request was, for the log: `long-poll request`, `document API request`. */
  readonly subject: string
  /** Answer `{"error": CODE, "message": ...}` (the document API speaks JSON) rather than `CODE: message`. */
  readonly json?: boolean
}

/**
 * Answers a failed request: its status, `x-error-code` and `x-close-code` (a poll channel closes as a
 * socket would have), `Retry-After` for a refusal for now, and the body `CODE: message`. A body not read
 * to its end is not drained: the connection closes. A client that left before its body ended gets
 * nothing and is logged at debug. Set `allow` on the response before throwing METHOD_NOT_ALLOWED.
 */
export const answerHttpError = (request: IncomingMessage, response: ServerResponse, error: unknown, options: HttpFailureOptions): void => {
  const where = { method: request.method, url: urlForLog(request.url) }
  // Nobody is left to answer, and a connection that drops is no fault of the server's.
  if (error instanceof ClientGone) {
    options.log.debug(where, `${options.subject}: ${error.message}`)
    response.destroy()
    return
  }
  const failure = toSyncError(error)
  logFailure(options.log, failure, error, where, options.subject)
  options.onError?.(failure.code)
  if (response.headersSent || response.destroyed) {
    response.destroy()
    return
  }
  const headers: Record<string, string> = {
    'content-type': options.json === true ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    'x-error-code': failure.code,
    'x-close-code': String(failure.closeCode),
  }
  if (failure.status === 503 || failure.status === 429) headers['retry-after'] = failure.code === 'OVERLOADED' ? '2' : '1'
  // The rest of a refused body is never read: close the connection rather than drain it.
  Object.assign(headers, connectionAfter(request))
  response.writeHead(failure.status, headers)
  response.end(options.json === true
    ? JSON.stringify({ error: failure.code, message: failure.message })
    : `${failure.code}: ${failure.message}\n`)
}

export interface SocketFailureOptions {
  readonly log: Logger
  readonly onError?: (code: ErrorCode) => void
}

/**
 * The answer to a socket's failure: the SyncError whose close code and reason the socket closes with,
 * logged and counted by the same rule as a request's.
 */
export const socketFailure = (error: unknown, options: SocketFailureOptions, fields: Record<string, unknown>, subject: string): SyncError => {
  const failure = toSyncError(error)
  logFailure(options.log, failure, error, fields, subject)
  options.onError?.(failure.code)
  return failure
}
