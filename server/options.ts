/**
 * What a SyncServer can be told (SyncServerOptions), the bounds of its timers, and the check that turns
 * an impossible value into a RangeError naming the option.
 */
import type { Authorize } from './access.js'
import type { Bus } from './bus/bus.js'
import type { Logger } from './log.js'
import type { Storage } from './storage/storage.js'
import type { WebhookOptions } from './webhooks.js'

/**
 * The longest delay a Node.js timer holds (2^31 - 1 ms, about 24.8 days): a longer one fires after 1 ms,
 * so a setting past it would close every socket at once instead of never.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** The longest connection age: its timer adds up to 10 % jitter. */
export const MAX_CONNECTION_AGE_MS = Math.floor(MAX_TIMER_MS / 1.1)

export interface SyncServerOptions {
  /** Where documents live. Default: in memory (nothing survives the process). */
  readonly storage?: Storage
  /** Connects instances that serve the same rooms. Default: none (a single instance). */
  readonly bus?: Bus | null
  /** Decides who may open a room. Default: everyone may write everywhere. */
  readonly authorize?: Authorize
  readonly logger?: Logger
  /** Path prefix of WebSocket URLs; the room is the rest of the path. Default `/`. */
  readonly prefix?: string
  /** Largest frame accepted; a larger one closes the socket with 1009. Default 16 MiB. */
  readonly maxMessageBytes?: number
  /** Default 30 s. */
  readonly pingIntervalMs?: number
  /** Default 10 s. */
  readonly roomIdleMs?: number
  /** Close each socket with 4000 after this age (plus up to 10 % jitter). Default: never. */
  readonly maxConnectionAgeMs?: number | null
  /** On `drain`, spread socket closes over this long. Default 3 s. */
  readonly shutdownSpreadMs?: number
  /** Compact a room's log once it has this many rows. Default 500. */
  readonly compactAfterRows?: number
  /** Path prefix of the long-polling endpoints; the room is the rest of the path. Default `/poll/`. */
  readonly pollPrefix?: string
  /** How long a poll with nothing to answer is held open. Default 25 s. */
  readonly pollHoldMs?: number
  /** Polls held at once by this instance; past it, a poll that would be held is answered 503. Default 2000. */
  readonly maxHeldPolls?: number
  /** Folder of the built web editor, served at `/`. Default: none. */
  readonly webRoot?: string | null
  /** Serve `GET /metrics` (Prometheus text format). Default true. */
  readonly metrics?: boolean
  /** Serve `/metrics` only to requests with `Authorization: Bearer <metricsToken>`. Default: none (public). */
  readonly metricsToken?: string | null
  /** Also report Node's process metrics (CPU, memory, event loop, GC). Default false; the CLI turns it on. */
  readonly processMetrics?: boolean
  /** Serve the document API under `/api/docs/`. Default true. */
  readonly docApi?: boolean
  /** POST a signed notice to a URL when rooms change. Default: none. */
  readonly webhook?: WebhookOptions | null
  /**
   * Serve the reconnect demo endpoints (`/api/demo/...`), which let any client close its own or its
   * room's connections. For demonstrations only. Default false.
   */
  readonly demo?: boolean
  /** Origins (`https://app.example.com`) browser pages may connect from; others get 4403. Default: any. */
  readonly allowedOrigins?: readonly string[] | null
  /** Longest room name; a longer one is refused with 4400 / 400. Default 256. */
  readonly maxRoomNameLength?: number
  /** Proxies in front whose `X-Forwarded-For` entries name the client (0: use the socket address). Default 0. */
  readonly trustProxy?: number
  /** Connections this instance takes; more get HTTP 503 before the upgrade. Default 10000. */
  readonly maxConnections?: number
  /** Connections from one client address. Default 1000 (a classroom behind one NAT fits). */
  readonly maxConnectionsPerIp?: number
  /** Connections to one room. Default 1000. */
  readonly maxConnectionsPerRoom?: number
  /** Sustained messages a second per socket; over it, the socket closes with 4529 (4429 when repeated). Default 100. */
  readonly messagesPerSecond?: number
  /** Messages a socket may send at once on top of the rate. Default 300. */
  readonly messageBurst?: number
  /**
   * Sustained long-poll requests (polls and sends) a second per client address, with a burst of twice
   * that; over it a request is answered 429 with `Retry-After: 1`. Default 200.
   */
  readonly pollRequestsPerSecond?: number
  /** A socket with more unsent bytes than this is closed with 4508 and resyncs. Default 16 MiB. */
  readonly maxBufferedBytes?: number
  /** Rooms held in memory; at the limit the least recently used idle room unloads. Default 10000. */
  readonly maxRooms?: number
  /**
   * Bytes the instance holds in input not yet complete (unfinished WebSocket messages, request bodies
   * being read); past it, new input over 64 KiB is refused (1013, HTTP 503). Default 128 MiB.
   */
  readonly maxUnfinishedInputBytes?: number
  /** Longest a WebSocket message or a request body may take to arrive in full (1008, HTTP 408). Default 60 s. */
  readonly inputTimeoutMs?: number
  /** Sustained document API requests a second per client address, burst twice that (429). Default 20. */
  readonly docRequestsPerSecond?: number
  /**
   * Awareness states one room admits from this instance's clients; a message that would add more is
   * refused (1013, HTTP 503) until states go. Default 2000.
   */
  readonly maxAwarenessStatesPerRoom?: number
}


/** `value` (or `fallback` when unset), or a RangeError naming the option when it is not a number from `min` to `max`. */
export const positive = (name: string, value: number | undefined, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number => {
  const result = value ?? fallback
  if (!Number.isFinite(result) || result < min || result > max) throw new RangeError(`${name} must be a number from ${min} to ${max}, got ${String(value)}`)
  return result
}
