/**
 * The project's server with storage off (MemoryStorage): the same code path as `dist/server/main.js`,
 * commit-before-broadcast included, but the commit costs nothing. Used to price durability (goal 6).
 * Env: PORT.
 */
import { createLogger, MemoryStorage, SyncServer } from '../../server/index.js'

// The same generous limits as the SQLite run (see bench/servers.ts).
const server = new SyncServer({
  storage: new MemoryStorage(),
  logger: createLogger('warn'),
  messagesPerSecond: 1_000_000,
  maxConnectionsPerIp: 100_000,
  maxConnectionsPerRoom: 100_000,
  maxConnections: 100_000,
})
await server.listen(Number(process.env.PORT ?? 0), '127.0.0.1')
process.on('SIGTERM', () => { void server.close().then(() => process.exit(0)) })
