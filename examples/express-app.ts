/**
 * Embedding example: an Express app with the sync server mounted under `/sync/`.
 *
 *   npm run build && PORT=8080 node dist/examples/express-app.js
 *   then point a y-websocket client at ws://localhost:8080/sync/<room>?user=alice
 *
 * WebSocket upgrades never pass through Express: `sync.attach(server)` takes those whose path starts with
 * the `prefix`. Plain requests under `/sync` (health, /metrics, /api/docs/...) are handed to the sync
 * server by a middleware; Express strips the mount path, so the sync server sees `/api/docs/...`.
 * Outside this repository, import from 'yjs-relay'.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import express from 'express'
import { createSyncServer, LISTEN_BACKLOG, MemoryStorage, SyncError, validateRoomName, type SyncServer } from '../server/index.js'

export interface RunningExample {
  readonly sync: SyncServer
  readonly http: Server
  readonly port: number
  close (): Promise<void>
}

export const start = async (port = 0, host = '127.0.0.1'): Promise<RunningExample> => {
  const sync = createSyncServer({
    storage: new MemoryStorage(),
    prefix: '/sync/',
    // `?user=` stands in for a real session: no user, no access; the user "viewer" may only read.
    authorize: (request) => {
      const user = new URL(request.url ?? '/', 'http://localhost').searchParams.get('user')
      if (user === null || user === '') throw new SyncError('UNAUTHENTICATED', 'say who you are: ?user=')
      return { mode: user === 'viewer' ? 'read' : 'write' }
    },
  })

  const app = express()
  app.use('/sync', (request, response, next) => {
    sync.handleRequest(request, response).then((handled) => { if (!handled) next() }, next)
  })
  app.get('/', (_request, response) => { response.type('text').send('my app\n') })
  // The app's own API reads and changes documents from server code. A room is named by the raw path, as
  // sockets name it (`my%20notes`); Express would hand `request.params` over decoded (`my notes`).
  const roomOf = (request: express.Request): string => {
    const room = request.path.slice('/notes/'.length)
    validateRoomName(room)
    return room
  }
  app.get('/notes/:room', async (request, response, next) => {
    try {
      const room = await sync.openRoom(roomOf(request))
      try {
        response.json({ text: room.doc.getText('text').toString() })
      } finally {
        room.release()
      }
    } catch (error) {
      next(error)
    }
  })
  app.post('/notes/:room', express.json(), async (request, response, next) => {
    try {
      const line = String((request.body as { line?: unknown }).line ?? '')
      await sync.transact(roomOf(request), (doc) => {
        const text = doc.getText('text')
        text.insert(text.length, `${line}\n`)
      })
      response.json({ ok: true })
    } catch (error) {
      next(error)
    }
  })

  // Errors as text with their status: a bad room name (400), a body that is not JSON (400).
  app.use((error: unknown, _request: express.Request, response: express.Response, next: express.NextFunction) => {
    if (response.headersSent) return next(error)
    const status = error instanceof SyncError ? error.status : (error as { status?: number }).status ?? 500
    response.status(status).type('text').send(`${error instanceof Error && status < 500 ? error.message : 'internal error'}\n`)
  })

  const http = await new Promise<Server>((resolve) => {
    // A deep accept queue: after a restart every client reconnects at once.
    const server = app.listen(port, host, LISTEN_BACKLOG, () => resolve(server))
  })
  sync.attach(http)

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
  running.sync.log.info(`example listening on http://localhost:${running.port} (rooms at /sync/<room>)`)
  const stop = (): void => { void running.close().then(() => process.exit(0)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
