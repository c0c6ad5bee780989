import { resolve } from 'node:path'
import { LOG_LEVELS, type LogLevel } from './log.js'
import { NUMBER_OPTIONS, OTHER_DEFAULTS, type NumberOption, type NumberOptionName } from './options.js'

/** Everything `main.ts` reads from the environment and the command line. */
export interface Config {
  readonly port: number
  readonly host: string
  readonly dataDir: string
  readonly sqliteSynchronous: 'full' | 'normal'
  readonly databaseUrl: string | null
  readonly databaseSchema: string
  readonly redisUrl: string | null
  readonly redisPrefix: string
  readonly maxConnectionAgeMs: number | null
  readonly authSecret: string | null
  readonly metricsToken: string | null
  readonly logLevel: LogLevel
  readonly maxMessageBytes: number
  readonly pingIntervalMs: number
  readonly roomIdleMs: number
  readonly shutdownSpreadMs: number
  readonly maxHeldPolls: number
  readonly demo: boolean
  readonly webhookUrl: string | null
  readonly webhookSecret: string | null
  readonly webhookTextFields: readonly string[]
  readonly webhookDebounceMs: number
  readonly allowedOrigins: readonly string[] | null
  readonly trustProxy: number
  readonly maxConnections: number
  readonly maxConnectionsPerIp: number
  readonly maxConnectionsPerRoom: number
  readonly messagesPerSecond: number
  /** null: the server's default (MIN_MESSAGE_BURST or the rate, whichever is larger). */
  readonly messageBurst: number | null
  readonly pollRequestsPerSecond: number
  readonly maxBufferedBytes: number
  readonly maxRooms: number
  readonly maxRoomNameLength: number
  readonly maxUnfinishedInputBytes: number
  readonly inputTimeoutMs: number
  readonly docRequestsPerSecond: number
  readonly maxAwarenessStatesPerRoom: number
}

interface Key {
  readonly env: string
  readonly flag: string
  readonly help: string
  readonly fallback: string | null
}

/** The default of a numeric option as text, from the one table of them (options.ts). */
const fallbackOf = (name: NumberOptionName): string | null => {
  const value = NUMBER_OPTIONS[name].default
  return value === null ? null : String(value)
}

/**
 * Every setting: its environment variable, its flag, what it is for and its default. The defaults of the
 * settings that are SyncServer options come from NUMBER_OPTIONS, and so do their ranges.
 */
export const KEYS = {
  port: { env: 'PORT', flag: '--port', help: 'TCP port to listen on', fallback: '8080' },
  host: { env: 'HOST', flag: '--host', help: 'address to listen on', fallback: '0.0.0.0' },
  dataDir: { env: 'DATA_DIR', flag: '--data-dir', help: 'folder of the embedded SQLite database', fallback: './data' },
  sqliteSynchronous: { env: 'SQLITE_SYNCHRONOUS', flag: '--sqlite-synchronous', help: 'full: sync the SQLite log on every commit (survives a power cut); normal: only at checkpoints (survives kill -9, not a power cut)', fallback: 'full' },
  databaseUrl: { env: 'DATABASE_URL', flag: '--database-url', help: 'postgres:// URL: store in Postgres instead of SQLite', fallback: null },
  databaseSchema: { env: 'DATABASE_SCHEMA', flag: '--database-schema', help: 'Postgres schema of the tables (created on start)', fallback: 'public' },
  redisUrl: { env: 'REDIS_URL', flag: '--redis-url', help: 'redis:// URL: the bus between instances', fallback: null },
  redisPrefix: { env: 'REDIS_PREFIX', flag: '--redis-prefix', help: 'prefix of the Redis stream keys (one stream per room)', fallback: 'yjs-relay:' },
  maxConnectionAgeMs: { env: 'MAX_CONNECTION_AGE_MS', flag: '--max-connection-age-ms', help: 'close sockets (code 4000) after this age plus up to 10% jitter; off when unset', fallback: fallbackOf('maxConnectionAgeMs') },
  authSecret: { env: 'AUTH_SECRET', flag: '--auth-secret', help: 'HS256 secret: require signed tokens', fallback: null },
  metricsToken: { env: 'METRICS_TOKEN', flag: '--metrics-token', help: 'GET /metrics needs "Authorization: Bearer <token>"; public when unset', fallback: null },
  logLevel: { env: 'LOG_LEVEL', flag: '--log-level', help: LOG_LEVELS.join(', '), fallback: 'info' },
  maxMessageBytes: { env: 'MAX_MESSAGE_BYTES', flag: '--max-message-bytes', help: 'largest frame or request body; larger closes with 1009', fallback: fallbackOf('maxMessageBytes') },
  pingIntervalMs: { env: 'PING_INTERVAL_MS', flag: '--ping-interval-ms', help: 'ping sockets this often; terminate one that missed the previous pong', fallback: fallbackOf('pingIntervalMs') },
  roomIdleMs: { env: 'ROOM_IDLE_MS', flag: '--room-idle-ms', help: 'unload a room this long after its last client left', fallback: fallbackOf('roomIdleMs') },
  shutdownSpreadMs: { env: 'SHUTDOWN_SPREAD_MS', flag: '--shutdown-spread-ms', help: 'on SIGTERM, spread socket closes (1012) over this long', fallback: fallbackOf('shutdownSpreadMs') },
  maxHeldPolls: { env: 'MAX_HELD_POLLS', flag: '--max-held-polls', help: 'long polls one instance holds at once; past it a poll is answered 503 with Retry-After', fallback: fallbackOf('maxHeldPolls') },
  demo: { env: 'DEMO', flag: '--demo', help: 'enable the reconnect demo endpoints (true/false)', fallback: String(OTHER_DEFAULTS.demo) },
  webhookUrl: { env: 'WEBHOOK_URL', flag: '--webhook-url', help: 'http(s) URL: POST a signed notice when a room changes', fallback: null },
  webhookSecret: { env: 'WEBHOOK_SECRET', flag: '--webhook-secret', help: 'HMAC-SHA256 key for the X-Signature-256 header of webhook POSTs', fallback: null },
  webhookTextFields: { env: 'WEBHOOK_TEXT_FIELDS', flag: '--webhook-text-fields', help: 'comma-separated top-level types whose content goes into webhook POSTs', fallback: null },
  webhookDebounceMs: { env: 'WEBHOOK_DEBOUNCE_MS', flag: '--webhook-debounce-ms', help: 'at most one webhook POST per room this often', fallback: fallbackOf('webhook.debounceMs') },
  allowedOrigins: { env: 'ALLOWED_ORIGINS', flag: '--allowed-origins', help: 'comma list of origins browser pages may connect from (others: 4403); any when unset', fallback: null },
  trustProxy: { env: 'TRUST_PROXY', flag: '--trust-proxy', help: 'proxies in front whose X-Forwarded-For names the client (0: none; true = 1)', fallback: fallbackOf('trustProxy') },
  maxConnections: { env: 'MAX_CONNECTIONS', flag: '--max-connections', help: 'connections per instance; more get HTTP 503', fallback: fallbackOf('maxConnections') },
  maxConnectionsPerIp: { env: 'MAX_CONNECTIONS_PER_IP', flag: '--max-connections-per-ip', help: 'connections per client address; more get HTTP 503', fallback: fallbackOf('maxConnectionsPerIp') },
  maxConnectionsPerRoom: { env: 'MAX_CONNECTIONS_PER_ROOM', flag: '--max-connections-per-room', help: 'connections per room; more get HTTP 503', fallback: fallbackOf('maxConnectionsPerRoom') },
  messagesPerSecond: { env: 'MAX_MESSAGES_PER_SECOND', flag: '--max-messages-per-second', help: 'sustained messages a second per socket; over it closes with 4529 (4429 when its address keeps doing it)', fallback: fallbackOf('messagesPerSecond') },
  messageBurst: { env: 'MESSAGE_BURST', flag: '--message-burst', help: 'messages a socket may send at once on top of the rate (default: 300 or the rate, whichever is larger)', fallback: fallbackOf('messageBurst') },
  pollRequestsPerSecond: { env: 'MAX_POLL_REQUESTS_PER_SECOND', flag: '--max-poll-requests-per-second', help: 'sustained long-poll requests a second per client address (burst: twice that); over it answers 429 with Retry-After', fallback: fallbackOf('pollRequestsPerSecond') },
  maxBufferedBytes: { env: 'MAX_BUFFERED_BYTES', flag: '--max-buffered-bytes', help: 'unsent bytes a socket may hold; more closes it with 4508', fallback: fallbackOf('maxBufferedBytes') },
  maxRooms: { env: 'MAX_ROOMS', flag: '--max-rooms', help: 'rooms held in memory; the least recently used idle room unloads first', fallback: fallbackOf('maxRooms') },
  maxRoomNameLength: { env: 'MAX_ROOM_NAME_LENGTH', flag: '--max-room-name-length', help: 'longest room name; longer is refused (4400 / 400)', fallback: fallbackOf('maxRoomNameLength') },
  maxUnfinishedInputBytes: { env: 'MAX_UNFINISHED_INPUT_BYTES', flag: '--max-unfinished-input-bytes', help: 'bytes the instance holds in unfinished messages and request bodies; past it new large input is refused (1013 / 503)', fallback: fallbackOf('maxUnfinishedInputBytes') },
  inputTimeoutMs: { env: 'INPUT_TIMEOUT_MS', flag: '--input-timeout-ms', help: 'longest a message or request body may take to arrive in full (1008 / 408)', fallback: fallbackOf('inputTimeoutMs') },
  maxAwarenessStatesPerRoom: { env: 'MAX_AWARENESS_STATES_PER_ROOM', flag: '--max-awareness-states-per-room', help: 'awareness states a room admits from clients; more are refused (1013 / 503) until states go', fallback: fallbackOf('maxAwarenessStatesPerRoom') },
  docRequestsPerSecond: { env: 'MAX_DOC_REQUESTS_PER_SECOND', flag: '--max-doc-requests-per-second', help: 'sustained document API requests a second per client address (burst: twice that); over it answers 429', fallback: fallbackOf('docRequestsPerSecond') },
} as const satisfies Record<keyof Config, Key>

/** A setting that cannot be used; the message names the key. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

const integer = (key: Key, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${key.env} (${key.flag}) must be a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(`${key.env} (${key.flag}) must be between ${min} and ${max}, got ${value}`)
  return value
}

/** A whole number in the range NUMBER_OPTIONS gives the option of that name. */
const ranged = (key: Key, raw: string, option: NumberOption): number => integer(key, raw, option.min, option.max)

const url = (key: Key, raw: string, protocols: readonly string[]): string => {
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(`${key.env} (${key.flag}) is not a URL: "${raw}"`)
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${key.env} (${key.flag}) must start with ${protocols.join(' or ')}, got "${parsed.protocol}"`)
  }
  return raw
}

const identifier = (key: Key, raw: string): string => {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(raw)) throw new ConfigError(`${key.env} (${key.flag}) must be letters, digits and "_" (at most 63), got "${raw}"`)
  return raw
}

const origins = (key: Key, raw: string): string[] => {
  const list = raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const origin of list) {
    let parsed: URL | null = null
    try { parsed = new URL(origin) } catch {}
    if (parsed === null || parsed.origin === 'null') throw new ConfigError(`${key.env} (${key.flag}) holds "${origin}", not an origin such as https://app.example.com`)
  }
  if (list.length === 0) throw new ConfigError(`${key.env} (${key.flag}) is empty; leave it unset to allow every origin`)
  return list
}

const boolean = (key: Key, raw: string): boolean => {
  const value = raw.trim().toLowerCase()
  if (['1', 'true', 'yes', 'on'].includes(value)) return true
  if (['0', 'false', 'no', 'off', ''].includes(value)) return false
  throw new ConfigError(`${key.env} (${key.flag}) must be true or false, got "${raw}"`)
}

/**
 * Reads settings from `argv` (flags win) and `env`. `--flag value`, `--flag=value` and a bare boolean
 * `--demo` are accepted. Throws ConfigError naming the key for anything unknown or invalid.
 */
export const parseConfig = (env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): Config => {
  const raw = new Map<keyof Config, string>()
  const names = Object.keys(KEYS) as Array<keyof Config>
  for (const name of names) {
    const value = env[KEYS[name].env]
    if (value !== undefined && value !== '') raw.set(name, value)
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const name = names.find((n) => KEYS[n].flag === flag)
    if (name === undefined) throw new ConfigError(`unknown option "${arg}" (see --help)`)
    if (inline !== undefined) raw.set(name, inline)
    else if (name === 'demo' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) raw.set(name, 'true')
    else {
      const next = argv[++i]
      if (next === undefined) throw new ConfigError(`${flag} needs a value`)
      raw.set(name, next)
    }
  }
  const get = (name: keyof Config): string | null => raw.get(name) ?? KEYS[name].fallback

  const logLevel = get('logLevel')!
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL (--log-level) must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)
  }
  const age = get('maxConnectionAgeMs')
  const synchronous = get('sqliteSynchronous')!.toLowerCase()
  if (synchronous !== 'full' && synchronous !== 'normal') throw new ConfigError(`SQLITE_SYNCHRONOUS (--sqlite-synchronous) must be full or normal, got "${synchronous}"`)
  const secret = get('authSecret')
  if (secret !== null && secret.length < 16) throw new ConfigError('AUTH_SECRET (--auth-secret) must be at least 16 characters')
  const metricsToken = get('metricsToken')
  if (metricsToken !== null && metricsToken.length < 16) throw new ConfigError('METRICS_TOKEN (--metrics-token) must be at least 16 characters')
  const database = get('databaseUrl')
  const redis = get('redisUrl')
  const webhook = get('webhookUrl')
  const webhookSecret = get('webhookSecret')
  if (webhookSecret !== null && webhook === null) throw new ConfigError('WEBHOOK_SECRET (--webhook-secret) is set but WEBHOOK_URL (--webhook-url) is not')
  const allowed = get('allowedOrigins')
  const trustProxy = get('trustProxy')!
  const burst = get('messageBurst')
  const option = (name: NumberOptionName & keyof Config, raw: string): number => ranged(KEYS[name], raw, NUMBER_OPTIONS[name])
  return {
    port: integer(KEYS.port, get('port')!, 0, 65535),
    host: get('host')!,
    dataDir: resolve(get('dataDir')!),
    sqliteSynchronous: synchronous,
    databaseUrl: database === null ? null : url(KEYS.databaseUrl, database, ['postgres:', 'postgresql:']),
    databaseSchema: identifier(KEYS.databaseSchema, get('databaseSchema')!),
    redisUrl: redis === null ? null : url(KEYS.redisUrl, redis, ['redis:', 'rediss:']),
    redisPrefix: get('redisPrefix')!,
    maxConnectionAgeMs: age === null ? null : option('maxConnectionAgeMs', age),
    authSecret: secret,
    metricsToken,
    logLevel: logLevel as LogLevel,
    maxMessageBytes: option('maxMessageBytes', get('maxMessageBytes')!),
    pingIntervalMs: option('pingIntervalMs', get('pingIntervalMs')!),
    roomIdleMs: option('roomIdleMs', get('roomIdleMs')!),
    shutdownSpreadMs: option('shutdownSpreadMs', get('shutdownSpreadMs')!),
    maxHeldPolls: option('maxHeldPolls', get('maxHeldPolls')!),
    demo: boolean(KEYS.demo, get('demo')!),
    webhookUrl: webhook === null ? null : url(KEYS.webhookUrl, webhook, ['http:', 'https:']),
    webhookSecret,
    webhookTextFields: (get('webhookTextFields') ?? '').split(',').map((name) => name.trim()).filter((name) => name !== ''),
    webhookDebounceMs: ranged(KEYS.webhookDebounceMs, get('webhookDebounceMs')!, NUMBER_OPTIONS['webhook.debounceMs']),
    allowedOrigins: allowed === null ? null : origins(KEYS.allowedOrigins, allowed),
    trustProxy: /^(true|yes|on)$/i.test(trustProxy) ? 1 : /^(false|no|off)$/i.test(trustProxy) ? 0 : option('trustProxy', trustProxy),
    maxConnections: option('maxConnections', get('maxConnections')!),
    maxConnectionsPerIp: option('maxConnectionsPerIp', get('maxConnectionsPerIp')!),
    maxConnectionsPerRoom: option('maxConnectionsPerRoom', get('maxConnectionsPerRoom')!),
    messagesPerSecond: option('messagesPerSecond', get('messagesPerSecond')!),
    messageBurst: burst === null ? null : option('messageBurst', burst),
    pollRequestsPerSecond: option('pollRequestsPerSecond', get('pollRequestsPerSecond')!),
    maxBufferedBytes: option('maxBufferedBytes', get('maxBufferedBytes')!),
    maxRooms: option('maxRooms', get('maxRooms')!),
    maxRoomNameLength: option('maxRoomNameLength', get('maxRoomNameLength')!),
    maxUnfinishedInputBytes: option('maxUnfinishedInputBytes', get('maxUnfinishedInputBytes')!),
    inputTimeoutMs: option('inputTimeoutMs', get('inputTimeoutMs')!),
    docRequestsPerSecond: option('docRequestsPerSecond', get('docRequestsPerSecond')!),
    maxAwarenessStatesPerRoom: option('maxAwarenessStatesPerRoom', get('maxAwarenessStatesPerRoom')!),
  }
}

/** The text `--help` prints. */
export const helpText = (): string => {
  const rows = Object.values(KEYS).map((key: Key) =>
    `  ${`${key.flag} <value>`.padEnd(32)} ${key.env.padEnd(22)} ${key.help}${key.fallback === null ? '' : ` (default ${key.fallback})`}`)
  return ['Usage: yjs-relay [options]', '', 'Every option can also be set by its environment variable; a flag wins.', '', ...rows, '  --help'.padEnd(34) + ' print this and exit', ''].join('\n')
}
