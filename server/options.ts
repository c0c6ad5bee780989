/**
 * What a SyncServer can be told: SyncServerOptions, and the one table of numeric defaults and ranges that
 * the options, the constructor and the command-line configuration (config.ts) all read. A value outside
 * its range fails option-check.ts: a TypeError for the wrong type, a RangeError out of range, both naming
 * the option (as ws does).
 */
import type { Authorize } from './access.js'
import type { Bus } from './bus/bus.js'
import type { Logger } from './log.js'
import type { Storage } from './storage/storage.js'
import type { WebhookOptions } from './webhooks.js'
import { checkNumber } from './option-check.js'

/**
 * The longest delay a Node.js timer holds (2^31 - 1 ms, about 24.8 days): a longer one fires after 1 ms,
 * so a setting past it would close every socket at once instead of never.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** The longest connection age: its timer adds up to 10 % jitter. */
export const MAX_CONNECTION_AGE_MS = Math.floor(MAX_TIMER_MS / 1.1)

const MiB = 1024 * 1024
const ANY = Number.MAX_SAFE_INTEGER

/** A numeric option: its default (null: off, or derived from another option) and the whole numbers it takes. */
export interface NumberOption {
  readonly default: number | null
  readonly min: number
  readonly max: number
}

/**
 * Every numeric option's default and range. SyncServerOptions documents each by its entry here, the
 * constructor fills what is unset from it, and config.ts prints it in `--help` and checks env values
 * against the same range.
 */
export const NUMBER_OPTIONS = {
  maxMessageBytes: { default: 16 * MiB, min: 1024, max: 1024 ** 3 },
  pingIntervalMs: { default: 30_000, min: 10, max: MAX_TIMER_MS },
  roomIdleMs: { default: 10_000, min: 0, max: MAX_TIMER_MS },
  /** Off unless set. */
  maxConnectionAgeMs: { default: null, min: 100, max: MAX_CONNECTION_AGE_MS },
  shutdownSpreadMs: { default: 3000, min: 0, max: 60_000 },
  compactAfterRows: { default: 500, min: 1, max: ANY },
  pollHoldMs: { default: 25_000, min: 1, max: MAX_TIMER_MS },
  maxHeldPolls: { default: 2000, min: 1, max: ANY },
  maxRoomNameLength: { default: 256, min: 1, max: 8192 },
  trustProxy: { default: 0, min: 0, max: 10 },
  maxConnections: { default: 10_000, min: 1, max: ANY },
  maxConnectionsPerIp: { default: 1000, min: 1, max: ANY },
  maxConnectionsPerRoom: { default: 1000, min: 1, max: ANY },
  messagesPerSecond: { default: 100, min: 1, max: ANY },
  /** Unset: `MIN_MESSAGE_BURST` or `messagesPerSecond`, whichever is larger. */
  messageBurst: { default: null, min: 1, max: ANY },
  pollRequestsPerSecond: { default: 200, min: 1, max: ANY },
  maxBufferedBytes: { default: 16 * MiB, min: 1024, max: ANY },
  maxRooms: { default: 10_000, min: 1, max: ANY },
  maxUnfinishedInputBytes: { default: 128 * MiB, min: 64 * 1024, max: ANY },
  inputTimeoutMs: { default: 60_000, min: 100, max: MAX_TIMER_MS },
  docRequestsPerSecond: { default: 20, min: 1, max: ANY },
  maxAwarenessStatesPerRoom: { default: 2000, min: 1, max: ANY },
  'webhook.debounceMs': { default: 2000, min: 0, max: MAX_TIMER_MS },
  'webhook.maxAttempts': { default: 5, min: 1, max: ANY },
  'webhook.retryBaseMs': { default: 1000, min: 1, max: MAX_TIMER_MS },
  'webhook.timeoutMs': { default: 10_000, min: 1, max: MAX_TIMER_MS },
} as const satisfies Record<string, NumberOption>

export type NumberOptionName = keyof typeof NUMBER_OPTIONS

/** A numeric option as set, or its default from NUMBER_OPTIONS; checked against its range. */
export const numberOption = (name: NumberOptionName, value: number | undefined): number => {
  const option: NumberOption = NUMBER_OPTIONS[name]
  return checkNumber(name, value ?? option.default ?? undefined, option)
}

/** The defaults of the options that are not numbers. */
export const OTHER_DEFAULTS = {
  prefix: '/',
  pollPrefix: '/poll/',
  metrics: true,
  processMetrics: false,
  docApi: true,
  demo: false,
} as const

/** The burst a socket gets when `messageBurst` is unset, unless `messagesPerSecond` is larger. */
export const MIN_MESSAGE_BURST = 300

/** `messageBurst` as set, or by default the larger of MIN_MESSAGE_BURST and `messagesPerSecond`. */
export const messageBurst = (options: Pick<SyncServerOptions, 'messageBurst' | 'messagesPerSecond'>): number =>
  options.messageBurst == null
    ? Math.max(MIN_MESSAGE_BURST, numberOption('messagesPerSecond', options.messagesPerSecond))
    : numberOption('messageBurst', options.messageBurst)

/** A URL path prefix: starts and ends with `/`, or a TypeError naming the option. */
export const pathPrefix = (name: string, value: unknown): string => {
  if (typeof value !== 'string' || !value.startsWith('/') || !value.endsWith('/')) {
    throw new TypeError(`${name} must start and end with "/", got ${JSON.stringify(value)}`)
  }
  return value
}

/**
 * Everything is optional. The default and the accepted range of each numeric option are in
 * NUMBER_OPTIONS; the other defaults are in OTHER_DEFAULTS.
 */
export interface SyncServerOptions {
  /** Where documents live. Default: in memory (nothing survives the process). */
  readonly storage?: Storage
  /** Connects instances that serve the same rooms. Default: none (a single instance). */
  readonly bus?: Bus | null
  /** Decides who may open a room. Default: everyone may write everywhere. */
  readonly authorize?: Authorize
  readonly logger?: Logger
  /** Path prefix of WebSocket URLs; the room is the rest of the path. */
  readonly prefix?: string
  /** Largest frame accepted; a larger one closes the socket with 1009. */
  readonly maxMessageBytes?: number
  /** Ping every socket this often; terminate one that missed the previous pong. */
  readonly pingIntervalMs?: number
  /** Unload a room this long after its last client left. */
  readonly roomIdleMs?: number
  /** Close each socket with 4000 after this age (plus up to 10 % jitter). Default (null): never. */
  readonly maxConnectionAgeMs?: number | null
  /** On `drain`, spread socket closes over this long. */
  readonly shutdownSpreadMs?: number
  /** Compact a room's log once it has this many rows. */
  readonly compactAfterRows?: number
  /** Path prefix of the long-polling endpoints; the room is the rest of the path. */
  readonly pollPrefix?: string
  /** How long a poll with nothing to answer is held open. */
  readonly pollHoldMs?: number
  /** Polls held at once by this instance; past it, a poll that would be held is answered 503. */
  readonly maxHeldPolls?: number
  /** Folder of the built web editor, served at `/`. Default: none. */
  readonly webRoot?: string | null
  /** Serve `GET /metrics` (Prometheus text format). */
  readonly metrics?: boolean
  /** Serve `/metrics` only to requests with `Authorization: Bearer <metricsToken>`. Default: none (public). */
  readonly metricsToken?: string | null
  /** Also report Node's process metrics (CPU, memory, event loop, GC); the CLI turns it on. */
  readonly processMetrics?: boolean
  /** Serve the document API under `/api/docs/`. */
  readonly docApi?: boolean
  /** POST a signed notice to a URL when rooms change. Default: none. */
  readonly webhook?: WebhookOptions | null
  /**
   * Serve the reconnect demo endpoints (`/api/demo/...`), which let any client close its own or its
   * room's connections. For demonstrations only.
   */
  readonly demo?: boolean
  /** Origins (`https://app.example.com`) browser pages may connect from; others get 4403. Default: any. */
  readonly allowedOrigins?: readonly string[] | null
  /** Longest room name; a longer one is refused with 4400 / 400. */
  readonly maxRoomNameLength?: number
  /** Proxies in front whose `X-Forwarded-For` entries name the client (0: use the socket address). */
  readonly trustProxy?: number
  /** Connections this instance takes; more get HTTP 503 before the upgrade. */
  readonly maxConnections?: number
  /** Connections from one client address (the default fits a classroom behind one NAT). */
  readonly maxConnectionsPerIp?: number
  /** Connections to one room. */
  readonly maxConnectionsPerRoom?: number
  /** Sustained messages a second per socket; over it, the socket closes with 4529 (4429 when repeated). */
  readonly messagesPerSecond?: number
  /** Messages a socket may send at once on top of the rate. Default (null): 300 or the rate, whichever is larger. */
  readonly messageBurst?: number | null
  /**
   * Sustained long-poll requests (polls and sends) a second per client address, with a burst of twice
   * that; over it a request is answered 429 with `Retry-After: 1`.
   */
  readonly pollRequestsPerSecond?: number
  /** A socket with more unsent bytes than this is closed with 4508 and resyncs. */
  readonly maxBufferedBytes?: number
  /** Rooms held in memory; at the limit the least recently used idle room unloads. */
  readonly maxRooms?: number
  /**
   * Bytes the instance holds in input not yet complete (unfinished WebSocket messages, request bodies
   * being read); past it, new input over 64 KiB is refused (1013, HTTP 503).
   */
  readonly maxUnfinishedInputBytes?: number
  /** Longest a WebSocket message or a request body may take to arrive in full (1008, HTTP 408). */
  readonly inputTimeoutMs?: number
  /** Sustained document API requests a second per client address, burst twice that (429). */
  readonly docRequestsPerSecond?: number
  /**
   * Awareness states one room admits from this instance's clients; a message that would add more is
   * refused (1013, HTTP 503) until states go.
   */
  readonly maxAwarenessStatesPerRoom?: number
}
