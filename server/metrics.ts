/**
 * Prometheus metrics of one SyncServer, in its own registry (never prom-client's global one: several
 * servers may share a process, and each must report only its own).
 *
 * The hot path only adds to plain numbers (`TrafficCounters`); prom-client reads them when `/metrics` is
 * scraped. Per-event prom-client calls are kept to rare events (a commit batch, a close, an error).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Bus, BusMessage } from './bus/bus.js'
import type { ErrorCode } from './errors.js'
import { pathOf, sendText, type RequestHandler } from './transport/responses.js'

/** What a transport counts per frame: additions, nothing else. */
export interface TrafficCounters {
  messagesIn: number
  bytesIn: number
  messagesOut: number
  bytesOut: number
}

interface TransportEntry {
  readonly counters: TrafficCounters
  readonly connections: () => number
}

export interface MetricsOptions {
  /** Loaded rooms, read at scrape time. */
  readonly rooms: () => number
  /** Bytes held in unfinished input (see input-budget.ts), read at scrape time. */
  readonly unfinishedInput?: () => number
  /** Also report Node's process metrics (CPU, memory, event loop lag, GC). Default false. */
  readonly processMetrics?: boolean
}

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export class Metrics {
  readonly registry = new Registry()
  readonly #transports = new Map<string, TransportEntry>()
  readonly #commit: Histogram
  readonly #commitFailures: Counter
  readonly #skipped: Counter
  readonly #apply: Histogram
  readonly #busLag: Histogram
  readonly #catchUps: Counter
  readonly #refused: Counter
  readonly #closes: Counter<'code'>
  readonly #errors: Counter<'code'>
  readonly #webhooks: Counter<'result'>

  constructor (options: MetricsOptions) {
    const registers = [this.registry]
    const transports = this.#transports
    new Gauge({
      name: 'yjs_relay_connections',
      help: 'Open client connections, by transport',
      labelNames: ['transport'],
      registers,
      collect () {
        this.reset()
        for (const [transport, entry] of transports) this.set({ transport }, entry.connections())
      },
    })
    new Gauge({
      name: 'yjs_relay_rooms_loaded',
      help: 'Rooms held in memory by this instance',
      registers,
      collect () { this.set(options.rooms()) },
    })
    const unfinished = options.unfinishedInput
    if (unfinished !== undefined) {
      new Gauge({
        name: 'yjs_relay_unfinished_input_bytes',
        help: 'Bytes held in WebSocket messages and HTTP bodies not yet complete (MAX_UNFINISHED_INPUT_BYTES bounds them)',
        registers,
        collect () { this.set(unfinished()) },
      })
    }
    const traffic = (name: string, help: string, pick: (c: TrafficCounters, direction: 'in' | 'out') => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['transport', 'direction'],
        registers,
        collect () {
          this.reset()
          for (const [transport, entry] of transports) {
            this.inc({ transport, direction: 'in' }, pick(entry.counters, 'in'))
            this.inc({ transport, direction: 'out' }, pick(entry.counters, 'out'))
          }
        },
      })
    }
    traffic('yjs_relay_messages_total', 'Protocol messages received (in) and sent (out), by transport',
      (c, d) => d === 'in' ? c.messagesIn : c.messagesOut)
    traffic('yjs_relay_bytes_total', 'Protocol bytes received (in) and sent (out), by transport',
      (c, d) => d === 'in' ? c.bytesIn : c.bytesOut)
    const seconds = (name: string, help: string): Histogram => new Histogram({ name, help, buckets: SECONDS, registers })
    this.#commit = seconds('yjs_relay_storage_commit_seconds', 'Time to commit one group-commit batch to storage')
    this.#commitFailures = new Counter({
      name: 'yjs_relay_storage_commit_failures_total',
      help: 'Group commits that storage refused',
      registers,
    })
    this.#skipped = new Counter({ name: 'yjs_relay_updates_skipped_total', help: 'Stored updates that could not be applied: skipped when a room loaded, or refused after their commit', registers })
    this.#apply = seconds('yjs_relay_update_apply_seconds', 'Time to apply a committed batch to a room document and send it to its peers')
    this.#busLag = seconds('yjs_relay_bus_lag_seconds',
      'Time from publish on another instance to delivery here (when the bus knows the publish time)')
    this.#catchUps = new Counter({ name: 'yjs_relay_catch_up_reads_total', help: 'Reads of commits from storage that the bus did not bring (lost or late messages)', registers })
    this.#refused = new Counter({ name: 'yjs_relay_commits_refused_total', help: 'Room batches storage refused because another instance committed under the same ids first', registers })
    const counter = <L extends string>(name: string, help: string, label: L): Counter<L> => new Counter({ name, help, labelNames: [label], registers })
    this.#closes = counter('yjs_relay_closes_total', 'Closed client connections, by close code', 'code')
    this.#errors = counter('yjs_relay_errors_total', 'Errors answered to clients (close or HTTP status), by error code (see README)', 'code')
    this.#webhooks = counter('yjs_relay_webhook_deliveries_total',
      'Webhook POSTs by outcome (ok, failed: gave up after retries or could not read the room)', 'result')
    if (options.processMetrics ?? false) collectDefaultMetrics({ register: this.registry, prefix: 'yjs_relay_' })
  }

  /** Registers a transport; it adds to the returned counters as frames pass. */
  transport (name: string, connections: () => number): TrafficCounters {
    if (this.#transports.has(name)) throw new RangeError(`transport "${name}" is registered already`)
    const counters: TrafficCounters = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 }
    this.#transports.set(name, { counters, connections })
    return counters
  }

  /** The GroupCommitter's `onCommit`. */
  readonly commit = (durationMs: number, _updates: number, error: Error | null): void => {
    this.#commit.observe(durationMs / 1000)
    if (error !== null) {
      this.#commitFailures.inc()
      this.#errors.inc({ code: 'STORAGE_UNAVAILABLE' })
    }
  }

  /** The GroupCommitter's `onApplied`. */
  readonly applied = (durationMs: number): void => {
    this.#apply.observe(durationMs / 1000)
  }

  /** Rooms' `onSkipped`. */
  readonly skipped = (count: number): void => {
    this.#skipped.inc(count)
  }

  readonly closed = (code: number): void => {
    this.#closes.inc({ code: String(code) })
  }

  readonly error = (code: ErrorCode): void => {
    this.#errors.inc({ code })
  }

  readonly webhook = (ok: boolean): void => {
    this.#webhooks.inc({ result: ok ? 'ok' : 'failed' })
  }

  readonly caughtUp = (): void => {
    this.#catchUps.inc()
  }

  readonly refused = (): void => {
    this.#refused.inc()
  }

  readonly busLag = (ms: number): void => {
    this.#busLag.observe(Math.max(0, ms) / 1000)
  }

  /** The Prometheus text exposition and its content type. */
  async scrape (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}

/**
 * Wraps a bus so that every delivered message that carries its publish time (`sentAt`) is measured. The
 * wrapper adds one subtraction per message and changes nothing else.
 */
export const measureBus = (bus: Bus, lag: (ms: number) => void): Bus => ({
  subscribe: (room, handler) => bus.subscribe(room, {
    message: (message: BusMessage) => {
      if (message.sentAt !== undefined) lag(Date.now() - message.sentAt)
      handler.message(message)
    },
    gap: () => handler.gap(),
  }),
  publish: (room, message) => bus.publish(room, message),
  close: () => bus.close(),
})

/** Whether `header` is `Bearer <token>`, compared in constant time. */
const bearerMatches = (header: string | undefined, token: string): boolean => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  if (match === null) return false
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(match[1]!), digest(token))
}

/**
 * `GET /metrics`: the Prometheus text exposition. With a `token`, only to a request carrying
 * `Authorization: Bearer <token>` (others get 401).
 */
export const metricsRoute = (metrics: Metrics, token: string | null = null): RequestHandler => async (request, response) => {
  if (pathOf(request) !== '/metrics') return false
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    sendText(response, 405, 'method not allowed; use GET', { allow: 'GET' })
    return true
  }
  if (token !== null && !bearerMatches(request.headers.authorization, token)) {
    sendText(response, 401, 'metrics need "Authorization: Bearer <METRICS_TOKEN>"', { 'www-authenticate': 'Bearer realm="metrics"' })
    return true
  }
  const { contentType, body } = await metrics.scrape()
  response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
  response.end(request.method === 'HEAD' ? undefined : body)
  return true
}
