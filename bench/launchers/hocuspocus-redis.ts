/**
 * Hocuspocus 4 as one of several instances: its Redis extension (`@hocuspocus/extension-redis`, the
 * same version) relays every update through Redis pub/sub to the other instances that have the document
 * open. No database extension: nothing is stored, so the cluster benchmark prices the relay alone (the
 * project commits to Postgres before it broadcasts). Env: PORT, REDIS_PORT, REDIS_PREFIX.
 */
import { Redis } from '@hocuspocus/extension-redis'
import { Server } from '@hocuspocus/server'

const server = new Server({
  port: Number(process.env.PORT ?? 0),
  address: '127.0.0.1',
  quiet: true,
  stopOnSignals: false,
  extensions: [new Redis({ host: '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379), prefix: process.env.REDIS_PREFIX ?? 'hocuspocus' })],
})
await server.listen()
process.on('SIGTERM', () => { void server.destroy().then(() => process.exit(0)) })
