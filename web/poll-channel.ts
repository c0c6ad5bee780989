/**
 * HTTP long-polling presented as a frame channel, for networks where WebSocket cannot connect. Works in
 * browsers and in Node 20+ (global `fetch`). The wire format is described in
 * `server/transport/long-poll-wire.ts` and README ("Long-polling fallback").
 *
 * Frames the provider sends are batched into `op=send` POSTs, one in flight at a time, in order; the
 * server's answers become incoming frames. A poll loop asks the server, with the document's snapshot and
 * the awareness clocks, for whatever the client lacks. Nothing ties a client to one instance: every
 * request stands on its own, so a load balancer may route each one anywhere.
 *
 * A request that fails for a reason that may pass (network error, 5xx) is retried with backoff (or after
 * the server's Retry-After) and the same frames are sent again, which is harmless: Yjs updates and
 * awareness states are idempotent. After `maxFailures` failures in a row the channel closes with 1006,
 * and the provider reconnects and resyncs as it would after a dropped socket. A 4xx closes the channel
 * with the close code of the server's error code (4400-4499 are final for the provider).
 */
import * as Y from 'yjs'
import { ErrorCodes } from '../server/errors.js'
import { awarenessClocks, decodeFrames, encodeFrames, encodePollRequest } from '../server/transport/long-poll-wire.js'
import type { Channel, ChannelEvents, ChannelFactory, ChannelTarget } from './channel.js'
import { roomPath } from './websocket-channel.js'

export interface PollChannelOptions {
  /** Default: the global `fetch`. Tests and proxies can route requests through their own. */
  readonly fetch?: (input: string, init: RequestInit) => Promise<Response>
  /** Path prefix of the server's long-poll endpoints. Default `/poll/`. */
  readonly prefix?: string
  /** Close with 1006 after this many failed requests in a row. Default 4. */
  readonly maxFailures?: number
  /** First retry delay; doubles per failure up to 5 s. The server's Retry-After wins. Default 250 ms. */
  readonly retryDelayMs?: number
  /** Abort a request unanswered after this long (the server answers polls within ~25 s). Default 40 s. */
  readonly requestTimeoutMs?: number
  /** Largest send batch; a single larger frame still goes alone. Default 1 MiB. */
  readonly maxBatchBytes?: number
}

/**
 * A request that failed; `close` is the close code to report when it is final (4xx) or null to retry.
 * `rateLimited`: answered 429, the per-address request limit (the server is there and asks for a pause).
 */
class RequestFailure extends Error {
  constructor (message: string, readonly close: number | null, readonly retryAfterMs: number | null, readonly rateLimited = false) {
    super(message)
  }
}

/** The http(s) URL of a room's long-poll endpoint, without the query. */
export const pollUrl = (serverUrl: string, room: string, prefix = '/poll/'): string => {
  const url = new URL(serverUrl)
  const protocol = url.protocol === 'wss:' ? 'https:' : url.protocol === 'ws:' ? 'http:' : url.protocol
  // The room goes into the path as the socket URL has it: as is, but for `?` and `#`.
  return `${protocol}//${url.host}${prefix}${roomPath(room)}`
}

/** The close code the server gives with an error (`x-close-code`), else one derived from the status. */
const closeCodeOf = (response: Response): number => {
  const code = Number(response.headers.get('x-close-code'))
  if (Number.isInteger(code) && code >= 1000 && code < 5000) return code
  if (response.status === ErrorCodes.MESSAGE_TOO_BIG.status) return ErrorCodes.MESSAGE_TOO_BIG.close
  return response.status >= 400 && response.status < 500 ? 4000 + response.status : ErrorCodes.INTERNAL.close
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i])

class PollChannel implements Channel {
  readonly kind = 'poll' as const
  readonly #target: ChannelTarget
  readonly #events: ChannelEvents
  readonly #fetch: (input: string, init: RequestInit) => Promise<Response>
  readonly #url: string
  readonly #query: string
  readonly #maxFailures: number
  readonly #retryDelayMs: number
  readonly #requestTimeoutMs: number
  readonly #maxBatchBytes: number
  readonly #abort = new AbortController()
  #state: 'connecting' | 'open' | 'closed' = 'connecting'
  #queue: Uint8Array[] = []
  #sending = false
  #failures = 0

  constructor (target: ChannelTarget, events: ChannelEvents, options: PollChannelOptions) {
    this.#target = target
    this.#events = events
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.#url = pollUrl(target.serverUrl, target.room, options.prefix ?? '/poll/')
    this.#query = new URLSearchParams(target.params).toString()
    this.#maxFailures = options.maxFailures ?? 4
    this.#retryDelayMs = options.retryDelayMs ?? 250
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 40_000
    this.#maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024
    if (!(this.#maxFailures >= 1)) throw new RangeError(`maxFailures must be >= 1, got ${this.#maxFailures}`)
    // Events start after the factory has returned, as a WebSocket's do.
    setTimeout(() => { void this.#start() }, 0)
  }

  /** Read through a getter: TypeScript would keep its narrowing of `#state` across an await. */
  get #closed (): boolean {
    return this.#state === 'closed'
  }

  send (frame: Uint8Array): void {
    if (this.#state !== 'open') return
    this.#queue.push(frame.slice())
    // Frames sent in one turn (the handshake, a burst of edits) share one request.
    if (this.#queue.length === 1) queueMicrotask(() => { void this.#flush() })
  }

  close (code = 1000, reason = ''): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#abort.abort()
    this.#queue = []
    queueMicrotask(() => this.#events.close(code, reason))
  }

  async #start (): Promise<void> {
    // An empty send checks that the server is there and lets us in, before the provider starts talking.
    // Any failure closes the channel as a socket that could not connect (1006), except a 429: the server
    // is there and asks for a pause, which is waited out.
    if (await this.#request('send', new Uint8Array(0), (failure) => failure.rateLimited) === null) return
    if (this.#state !== 'connecting') return
    this.#state = 'open'
    this.#events.open()
    // Poll once the handshake the provider sent on open is answered, or the first poll would fetch the
    // whole document a second time.
    await this.#flush()
    void this.#pollLoop()
  }

  async #flush (): Promise<void> {
    if (this.#sending) return
    this.#sending = true
    try {
      while (this.#queue.length > 0 && this.#state === 'open') {
        let size = 0
        let count = 0
        while (count < this.#queue.length && (count === 0 || size + this.#queue[count]!.length <= this.#maxBatchBytes)) {
          size += this.#queue[count]!.length
          count++
        }
        const batch = this.#queue.slice(0, count)
        const replies = await this.#request('send', encodeFrames(batch))
        if (replies === null) return
        // Dropped only now: a batch that failed is sent again, with whatever was queued after it.
        this.#queue.splice(0, count)
        this.#deliver(replies)
      }
    } finally {
      this.#sending = false
    }
  }

  async #pollLoop (): Promise<void> {
    let previous: Uint8Array | null = null
    let answered = false
    while (this.#state === 'open') {
      const { doc, awareness } = this.#target
      const body = encodePollRequest(Y.encodeSnapshot(Y.snapshot(doc)), awarenessClocks(awareness))
      // An answer that changed nothing here (a provider that ignores some frame) must not become a busy loop.
      if (answered && previous !== null && sameBytes(previous, body)) await this.#sleep(1000)
      const frames = await this.#request('poll', body)
      if (frames === null) return
      previous = body
      answered = frames.length > 0
      this.#deliver(frames)
    }
  }

  #deliver (frames: readonly Uint8Array[]): void {
    for (const frame of frames) {
      if (this.#state !== 'open') return
      this.#events.message(frame)
    }
  }

  /**
   * One request, retrying failures `retryable` accepts (by default every one that is not final);
   * null once the channel is closed (by us, after a failure not retried, or after too many in a row).
   */
  async #request (op: 'poll' | 'send', body: Uint8Array, retryable = (failure: RequestFailure): boolean => failure.close === null): Promise<Uint8Array[] | null> {
    while (this.#state !== 'closed') {
      try {
        const frames = await this.#once(op, body)
        this.#failures = 0
        return frames
      } catch (error) {
        if (this.#closed) return null
        const failure = error instanceof RequestFailure ? error : new RequestFailure((error as Error).message, null, null)
        if (!retryable(failure)) {
          this.close(failure.close ?? 1006, failure.message)
          return null
        }
        if (++this.#failures >= this.#maxFailures) {
          this.close(1006, `${this.#failures} requests failed in a row; last: ${failure.message}`)
          return null
        }
        const backoff = Math.min(5000, this.#retryDelayMs * 2 ** (this.#failures - 1))
        await this.#sleep(failure.retryAfterMs ?? backoff)
      }
    }
    return null
  }

  async #once (op: 'poll' | 'send', body: Uint8Array): Promise<Uint8Array[]> {
    const abort = new AbortController()
    const cancel = (): void => abort.abort()
    this.#abort.signal.addEventListener('abort', cancel)
    const timer = setTimeout(cancel, this.#requestTimeoutMs)
    try {
      const response = await this.#fetch(`${this.#url}?${this.#query}${this.#query === '' ? '' : '&'}op=${op}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        // lib0 types its bytes as Uint8Array<ArrayBufferLike>, which the DOM typings do not take as a body.
        body: body as unknown as NonNullable<RequestInit['body']>,
        signal: abort.signal,
      })
      if (!response.ok) {
        const text = (await response.text().catch(() => '')).trim()
        const message = `${op} answered ${response.status}${text === '' ? '' : `: ${text}`}`
        // 429 is the per-address request limit: a neighbour behind the same address may have spent it.
        if (response.status >= 400 && response.status < 500 && response.status !== 429) throw new RequestFailure(message, closeCodeOf(response), null)
        const retryAfter = Number(response.headers.get('retry-after'))
        throw new RequestFailure(message, null, response.headers.has('retry-after') && Number.isFinite(retryAfter) ? retryAfter * 1000 : null, response.status === 429)
      }
      return decodeFrames(new Uint8Array(await response.arrayBuffer()))
    } finally {
      clearTimeout(timer)
      this.#abort.signal.removeEventListener('abort', cancel)
    }
  }

  #sleep (ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#abort.signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#abort.signal.addEventListener('abort', done)
    })
  }
}

/** A ChannelFactory that reaches the server by HTTP long-polling. */
export const pollChannel = (options: PollChannelOptions = {}): ChannelFactory =>
  (target, events) => new PollChannel(target, events, options)
