/**
 * Tells an outside service that rooms changed: a signed JSON POST per changed room, at most one per room
 * per `debounceMs` (changes in between are coalesced), retried with exponential backoff.
 *
 * Only the instance that committed a change reports it (the hook is the group committer, not the bus), so
 * a room edited through many instances still yields about one POST per window per instance that took
 * edits. Deliveries never touch the sync path: a slow or failing endpoint only delays its own POSTs.
 * Receivers should use `version` (it only grows) to ignore a POST that arrives after a newer one.
 */
import { createHmac } from 'node:crypto'
import type { Logger } from 'pino'
import * as Y from 'yjs'
import { typesAsText } from './doc-json.js'
import { numberOption } from './options.js'

/** The defaults and ranges of the numbers are in NUMBER_OPTIONS (options.ts), as `webhook.<name>`. */
export interface WebhookOptions {
  /** Where to POST. */
  readonly url: string
  /** Signs each body: header `X-Signature-256: sha256=<hex HMAC-SHA256 of the body>`. Default: unsigned. */
  readonly secret?: string | null
  /** Top-level types whose content goes into the payload's `text` (Y.Text and XML as strings, others as JSON). */
  readonly textFields?: readonly string[]
  /** Wait this long after a room's first change before posting it. */
  readonly debounceMs?: number
  /** Attempts per POST, the first included. */
  readonly maxAttempts?: number
  /** Delay before the first retry; doubled for each further one. */
  readonly retryBaseMs?: number
  /** Give up on one attempt after this long. */
  readonly timeoutMs?: number
}

/** The JSON body of a webhook POST. */
export interface WebhookPayload {
  readonly event: 'room.changed'
  readonly room: string
  /** When the POST was prepared (ISO 8601). */
  readonly time: string
  /** Sum of the document's state vector: grows with every change, never shrinks. */
  readonly version: number
  /** Size of the whole document as one Yjs update, in bytes. */
  readonly size: number
  /** The named types' content, when `textFields` is set. */
  readonly text?: Record<string, string>
}

export interface WebhookContext {
  readonly log: Logger
  /** Runs `read` on the room's current document (loading it if needed). */
  readonly withDoc: <T>(room: string, read: (doc: Y.Doc) => T) => Promise<T>
  /** Hears of each delivery's outcome (metrics). */
  readonly onDelivery?: (ok: boolean) => void
}

/** `sha256=<hex>`: what `X-Signature-256` carries for `body`. */
export const signBody = (secret: string, body: string): string =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`

const retryable = (status: number): boolean => status >= 500 || status === 408 || status === 429

export class Webhooks {
  readonly #options: Required<Omit<WebhookOptions, 'secret'>> & { secret: string | null }
  readonly #ctx: WebhookContext
  readonly #due = new Map<string, NodeJS.Timeout>()
  readonly #inflight = new Set<Promise<void>>()
  /** Aborted when closing starts: no more retries. */
  readonly #stopRetries = new AbortController()
  /** Aborted when closing gives up waiting: requests in flight are cut. */
  readonly #closing = new AbortController()

  constructor (options: WebhookOptions, ctx: WebhookContext) {
    let url: URL
    try {
      url = new URL(options.url)
    } catch {
      throw new TypeError(`webhook.url is not a URL: "${options.url}"`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`webhook.url must be http(s), got "${url.protocol}"`)
    this.#options = {
      url: options.url,
      secret: options.secret ?? null,
      textFields: options.textFields ?? [],
      debounceMs: numberOption('webhook.debounceMs', options.debounceMs),
      maxAttempts: numberOption('webhook.maxAttempts', options.maxAttempts),
      retryBaseMs: numberOption('webhook.retryBaseMs', options.retryBaseMs),
      timeoutMs: numberOption('webhook.timeoutMs', options.timeoutMs),
    }
    this.#ctx = ctx
  }

  /** Notes that `room` changed. Cheap: at most a timer per room per window. */
  changed (room: string): void {
    if (this.#due.has(room) || this.#stopRetries.signal.aborted) return
    const timer = setTimeout(() => {
      this.#due.delete(room)
      this.#track(this.#deliver(room, this.#options.maxAttempts))
    }, this.#options.debounceMs)
    timer.unref()
    this.#due.set(room, timer)
  }

  /** Sends what is waiting now (one attempt each), stops retries, and resolves when nothing is in flight. */
  async close (): Promise<void> {
    for (const [room, timer] of this.#due) {
      clearTimeout(timer)
      this.#track(this.#deliver(room, 1))
    }
    this.#due.clear()
    this.#stopRetries.abort()
    const stop = setTimeout(() => this.#closing.abort(), this.#options.timeoutMs)
    stop.unref()
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight])
    clearTimeout(stop)
    this.#closing.abort()
  }

  #track (delivery: Promise<void>): void {
    this.#inflight.add(delivery)
    void delivery.finally(() => this.#inflight.delete(delivery))
  }

  async #deliver (room: string, attempts: number): Promise<void> {
    let body: string
    try {
      body = JSON.stringify(await this.#ctx.withDoc(room, (doc) => this.#payload(room, doc)))
    } catch (error) {
      this.#ctx.log.warn({ room, err: error }, 'webhook: could not read the room; not sent')
      this.#ctx.onDelivery?.(false)
      return
    }
    await this.#attempt(room, body, 1, attempts)
  }

  #payload (room: string, doc: Y.Doc): WebhookPayload {
    let version = 0
    for (const clock of Y.decodeStateVector(Y.encodeStateVector(doc)).values()) version += clock
    const fields = this.#options.textFields
    return {
      event: 'room.changed',
      room,
      time: new Date().toISOString(),
      version,
      size: Y.encodeStateAsUpdate(doc).length,
      ...(fields.length > 0 ? { text: typesAsText(doc, fields) } : {}),
    }
  }

  async #attempt (room: string, body: string, attempt: number, attempts: number): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'yjs-relay-webhook' }
    if (this.#options.secret !== null) headers['x-signature-256'] = signBody(this.#options.secret, body)
    let problem: string
    let again: boolean
    try {
      const response = await fetch(this.#options.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.any([AbortSignal.timeout(this.#options.timeoutMs), this.#closing.signal]),
      })
      await response.body?.cancel().catch(() => {})
      if (response.ok) {
        this.#ctx.onDelivery?.(true)
        return
      }
      problem = `HTTP ${response.status}`
      again = retryable(response.status)
    } catch (error) {
      problem = (error as Error).message
      again = true
    }
    const stop = this.#stopRetries.signal
    if (!again || attempt >= attempts || stop.aborted) {
      this.#ctx.log.warn({ room, attempt, problem }, 'webhook: giving up on a delivery')
      this.#ctx.onDelivery?.(false)
      return
    }
    const delay = this.#options.retryBaseMs * 2 ** (attempt - 1)
    this.#ctx.log.info({ room, attempt, problem, retryInMs: delay }, 'webhook: delivery failed; will retry')
    await new Promise<void>((resolve) => {
      const wake = (): void => { clearTimeout(timer); stop.removeEventListener('abort', wake); resolve() }
      const timer = setTimeout(wake, delay)
      timer.unref()
      stop.addEventListener('abort', wake)
    })
    if (stop.aborted) {
      this.#ctx.log.warn({ room, attempt }, 'webhook: closing; dropped a delivery that was waiting to retry')
      this.#ctx.onDelivery?.(false)
      return
    }
    await this.#attempt(room, body, attempt + 1, attempts)
  }
}
