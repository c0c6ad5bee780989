/**
 * Embedding example: a sync server inside a plain `node:http` server that also serves the app's own pages.
 *
 *   npm run build && PORT=8080 node dist/examples/http-server.js
 *   then point a y-websocket client at ws://localhost:8080/<room>?key=let-me-write
 *
 * Rooms are at the root (`ws://host/<room>`); the sync server answers its own HTTP routes (health,
 * /metrics, /api/docs/...) and the app answers the rest. Outside this repository, import from 'yjs-relay'.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createSyncServer, LISTEN_BACKLOG, MemoryStorage, SyncError, type Access, type SyncServer } from '../server/index.js'

export interface RunningExample {
  readonly sync: SyncServer
  readonly http: Server
  readonly port: number
  close (): Promise<void>
}

/**
 * Who may do what, decided per connection (and per HTTP API request). Here: anyone may read public rooms,
 * `?key=let-me-write` may write, and rooms named `private-...` need the key even to read. A real app
 * checks its session cookie or a token instead.
 */
const authorize = (request: { url?: string | undefined }, room: string): Access => {
  const key = new URL(request.url ?? '/', 'http://localhost').searchParams.get('key')
  if (key === 'let-me-write') return { mode: 'write' }
  if (room.startsWith('private-')) throw new SyncError('UNAUTHENTICATED', 'private rooms need ?key=')
  return { mode: 'read' }
}

export const start = async (port = 0, host = '127.0.0.1'): Promise<RunningExample> => {
  const sync = createSyncServer({ storage: new MemoryStorage(), authorize })
  const http = createServer((request, response) => {
    sync.handleRequest(request, response).then((handled) => {
      if (handled) return
      response.writeHead(200, { 'content-type': 'text/plain' })
      response.end('my app\n')
    }, (error: unknown) => {
      sync.log.error({ err: error }, 'request failed')
      if (!response.headersSent) response.writeHead(500)
      response.end()
    })
  })
  sync.attach(http)
  // A deep accept queue: after a restart every client reconnects at once.
  await new Promise<void>((resolve) => http.listen({ port, host, backlog: LISTEN_BACKLOG }, resolve))

  // Server code can write to a room at any time: the change is stored, then reaches every client.
  await sync.transact('welcome', (doc) => {
    const text = doc.getText('text')
    if (text.length === 0) text.insert(0, 'Hello from the server\n')
  })

  return {
    sync,
    http,
    port: (http.address() as AddressInfo).port,
    close: async () => {
      await sync.close()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const running = await start(Number(process.env.PORT ?? 8080), '0.0.0.0')
  running.sync.log.info(`example listening on http://localhost:${running.port}`)
  const stop = (): void => { void running.close().then(() => process.exit(0)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
