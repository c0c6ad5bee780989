#!/usr/bin/env node
/**
 * The server as a program: the only module that reads the environment. It turns config into storage, a
 * bus and a sync server, listens, and shuts down gracefully on SIGTERM.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTokenAuthorize } from './tokens.js'
import { ConfigError, helpText, parseConfig, type Config } from './config.js'
import { createLogger, type Logger } from './log.js'
import type { Bus } from './bus/bus.js'
import { RedisBus } from './bus/redis.js'
import { PostgresStorage } from './storage/postgres.js'
import { SqliteStorage } from './storage/sqlite.js'
import type { Storage } from './storage/storage.js'
import { SyncServer } from './sync-server.js'

const here = dirname(fileURLToPath(import.meta.url))

const openStorage = async (config: Config, log: Logger): Promise<Storage> => {
  if (config.databaseUrl !== null) {
    const url = new URL(config.databaseUrl)
    log.info({ host: url.host, database: url.pathname.slice(1), schema: config.databaseSchema }, 'storage: Postgres')
    return PostgresStorage.open({ url: config.databaseUrl, schema: config.databaseSchema, log })
  }
  const file = join(config.dataDir, 'rooms.sqlite')
  log.info({ file, synchronous: config.sqliteSynchronous }, 'storage: SQLite')
  try {
    return new SqliteStorage({ file, synchronous: config.sqliteSynchronous })
  } catch (error) {
    throw new ConfigError(`DATA_DIR (--data-dir) ${config.dataDir}: cannot open ${file}: ${(error as Error).message}`)
  }
}

const main = async (): Promise<void> => {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText())
    return
  }
  let config: Config
  try {
    config = parseConfig(process.env, argv)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`configuration error: ${error.message}\n`)
    process.exit(2)
  }
  const log = createLogger(config.logLevel)
  let storage: Storage
  try {
    storage = await openStorage(config, log)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`configuration error: ${error.message}\n`)
    process.exit(2)
  }
  let bus: Bus | null = null
  if (config.redisUrl !== null) {
    log.info({ host: new URL(config.redisUrl).host, prefix: config.redisPrefix }, 'bus: Redis Streams')
    bus = new RedisBus({ url: config.redisUrl, prefix: config.redisPrefix, log })
  }
  const webRoot = join(here, '..', 'web')
  if (config.authSecret === null) {
    log.warn('AUTH_SECRET is not set: the server runs OPEN, anyone who can reach it may read and write every room')
  } else {
    log.info('AUTH_SECRET is set: every socket, poll and document request needs a signed token')
  }
  if (config.allowedOrigins === null) log.warn('ALLOWED_ORIGINS is not set: pages from any origin may connect')
  if (config.metricsToken === null) log.warn('METRICS_TOKEN is not set: anyone who can reach the server may read /metrics (room and connection counts)')
  const server = new SyncServer({
    storage,
    bus,
    logger: log,
    maxMessageBytes: config.maxMessageBytes,
    pingIntervalMs: config.pingIntervalMs,
    roomIdleMs: config.roomIdleMs,
    maxConnectionAgeMs: config.maxConnectionAgeMs,
    shutdownSpreadMs: config.shutdownSpreadMs,
    maxHeldPolls: config.maxHeldPolls,
    webRoot: existsSync(join(webRoot, 'index.html')) ? webRoot : null,
    demo: config.demo,
    processMetrics: true,
    metricsToken: config.metricsToken,
    webhook: config.webhookUrl === null
      ? null
      : { url: config.webhookUrl, secret: config.webhookSecret, textFields: config.webhookTextFields, debounceMs: config.webhookDebounceMs },
    ...(config.authSecret === null ? {} : { authorize: createTokenAuthorize({ secret: config.authSecret }) }),
    allowedOrigins: config.allowedOrigins,
    trustProxy: config.trustProxy,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    maxConnectionsPerRoom: config.maxConnectionsPerRoom,
    messagesPerSecond: config.messagesPerSecond,
    messageBurst: config.messageBurst,
    pollRequestsPerSecond: config.pollRequestsPerSecond,
    maxBufferedBytes: config.maxBufferedBytes,
    maxRooms: config.maxRooms,
    maxRoomNameLength: config.maxRoomNameLength,
    maxUnfinishedInputBytes: config.maxUnfinishedInputBytes,
    inputTimeoutMs: config.inputTimeoutMs,
    docRequestsPerSecond: config.docRequestsPerSecond,
    maxAwarenessStatesPerRoom: config.maxAwarenessStatesPerRoom,
  })
  if (config.demo) log.warn('DEMO is on: any client may close its own and its room\'s connections (/api/demo)')
  const address = await server.listen(config.port, config.host)
  log.info({ port: address.port, host: config.host }, `listening on http://${config.host}:${address.port}`)

  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'draining: readiness fails, sockets close with 1012')
    // Whatever a room, storage or the bus is doing, the process ends: every edit a client has seen echoed
    // is stored already, and a platform that sent SIGTERM sends SIGKILL a little later anyway.
    const boundMs = config.shutdownSpreadMs + SHUTDOWN_GRACE_MS
    setTimeout(() => {
      log.error({ signal, boundMs }, 'shutdown did not finish in time; exiting anyway')
      process.exit(1)
    }, boundMs).unref()
    await server.drain()
    await server.close()
    await bus?.close()
    await storage.close()
    log.info('stopped')
    process.exit(0)
  }
  // One bad request must not end every other session: log, and keep serving.
  process.on('uncaughtException', (error) => log.error({ err: error }, 'uncaught exception'))
  process.on('unhandledRejection', (error) => log.error({ err: error }, 'unhandled rejection'))
  process.on('SIGTERM', () => { void stop('SIGTERM') })
  process.on('SIGINT', () => { void stop('SIGINT') })
}

/** How long a shutdown may take beyond spreading the socket closes (flushing, compacting, closing storage). */
const SHUTDOWN_GRACE_MS = 10_000

main().catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exit(1)
})
