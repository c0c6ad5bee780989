/**
 * The one reader of HTTP request bodies (long-polling, the document API). A body is bounded three ways:
 * its size (`maxBytes`, 413), the instance-wide budget of unfinished input (see input-budget.ts, 503), and
 * time (`timeoutMs`, 408): a client that sends a body slowly, or stops halfway, holds its bytes for no
 * longer than that. A client that leaves before its body is complete gets ClientGone: no one is left to
 * answer, and it is no server error.
 */
import type { IncomingMessage } from 'node:http'
import { SyncError } from '../errors.js'
import type { InputBudget } from '../input-budget.js'

/** The client closed its connection before the body was complete. */
export class ClientGone extends Error {
  override readonly name = 'ClientGone'
}

export interface BodyLimits {
  readonly maxBytes: number
  readonly budget: InputBudget
  readonly timeoutMs: number
  /** The refusal of a body over `maxBytes` (default: MESSAGE_TOO_BIG). */
  readonly tooBig?: (size: number) => SyncError
}

const defaultTooBig = (limit: number) => (size: number): SyncError =>
  new SyncError('MESSAGE_TOO_BIG', `the request body of ${size} bytes or more is over the limit of ${limit}`)

/**
 * Reads a request body. A declared `Content-Length` is checked, and held in the budget, before any byte
 * is read; a body without one is held as it arrives. On any refusal the rest of the body is left unread:
 * answer it with `Connection: close` (see `connectionAfter`).
 */
export const readBody = (request: IncomingMessage, limits: BodyLimits): Promise<Uint8Array> => {
  const { maxBytes, budget, timeoutMs } = limits
  const tooBig = limits.tooBig ?? defaultTooBig(maxBytes)
  const declared = Number(request.headers['content-length'] ?? Number.NaN)
  if (declared > maxBytes) return Promise.reject(tooBig(declared))
  // Gone already, while the request waited for its turn (authorization): no event will come.
  if (request.destroyed && !request.complete) return Promise.reject(new ClientGone('the client left before its request body was complete'))
  let held = 0
  if (declared > 0) {
    if (!budget.resize(0, declared)) return Promise.reject(overBudget())
    held = declared
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (error: Error | null): void => {
      clearTimeout(timer)
      request.off('data', onData)
      request.off('end', onEnd)
      request.off('error', onError)
      request.off('close', onClose)
      budget.resize(held, 0)
      held = 0
      if (error !== null) reject(error)
      else resolve(new Uint8Array(Buffer.concat(chunks, size)))
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > maxBytes) return finish(tooBig(size))
      if (size > held) {
        if (!budget.resize(held, size)) return finish(overBudget())
        held = size
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => finish(null)
    const onError = (): void => finish(new ClientGone('the client left before its request body was complete'))
    const onClose = (): void => { if (!request.complete) onError() }
    const timer = setTimeout(() => finish(new SyncError('INPUT_TIMEOUT', `the request body did not arrive within ${timeoutMs} ms`)), timeoutMs)
    request.on('data', onData)
    request.once('end', onEnd)
    request.once('error', onError)
    request.once('close', onClose)
  })
}

const overBudget = (): SyncError =>
  new SyncError('OVERLOADED', 'the instance holds as much unfinished input as it allows; retry later')

/** Headers for an answer to a request whose body was not read in full: the rest is not drained. */
export const connectionAfter = (request: IncomingMessage): Record<string, string> =>
  request.complete ? {} : { connection: 'close' }
