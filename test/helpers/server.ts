import { createLogger } from '../../server/log.js'
import type { SyncServerOptions } from '../../server/options.js'
import { SyncServer } from '../../server/sync-server.js'

/** An in-process sync server on a free port. */
export interface TestServer {
  readonly server: SyncServer
  readonly port: number
  /** `ws://127.0.0.1:<port>` */
  readonly url: string
  /** `http://127.0.0.1:<port>` */
  readonly http: string
  close (): Promise<void>
}

export const startServer = async (options: SyncServerOptions = {}): Promise<TestServer> => {
  const server = new SyncServer({ logger: createLogger(process.env.TEST_LOG_LEVEL as never ?? 'silent'), ...options })
  const { port } = await server.listen(0, '127.0.0.1')
  return {
    server,
    port,
    url: `ws://127.0.0.1:${port}`,
    http: `http://127.0.0.1:${port}`,
    close: () => server.close(),
  }
}

/** POSTs `update` to a room over HTTP (`POST /api/docs/<room>/update`). */
export const postUpdate = (http: string, room: string, update: Uint8Array): Promise<Response> =>
  fetch(`${http}/api/docs/${room}/update`, { method: 'POST', body: update, signal: AbortSignal.timeout(10_000) })
