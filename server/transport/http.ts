import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'

/** A route handler: returns false when the request is not its to answer. */
export type RequestHandler = (request: IncomingMessage, response: ServerResponse) => Promise<boolean> | boolean

export const sendText = (response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void => {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers })
  response.end(`${text}\n`)
}

export const sendJson = (response: ServerResponse, status: number, value: unknown): void => {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
  response.end(JSON.stringify(value))
}

/** The path of a request URL without its query string. */
export const pathOf = (request: IncomingMessage): string => (request.url ?? '/').split('?')[0]!

export interface HealthOptions {
  /** Whether this instance takes clients now: false while starting and draining. */
  readonly accepting: () => boolean
  /** Rejects when storage cannot be reached. */
  readonly checkStorage: () => Promise<void>
}

/**
 * `/healthz` and `/liveness_check` say the process works; `/readiness_check` says whether to send it
 * clients: 503 while starting, draining, or when storage does not answer within two seconds.
 */
export const healthRoutes = (options: HealthOptions): RequestHandler => async (request, response) => {
  const path = pathOf(request)
  if (path === '/healthz' || path === '/liveness_check') {
    sendText(response, 200, 'ok')
    return true
  }
  if (path !== '/readiness_check') return false
  if (!options.accepting()) {
    sendText(response, 503, 'not accepting clients (starting or draining)')
    return true
  }
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      options.checkStorage(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('storage check timed out')), 2000) }),
    ])
    sendText(response, 200, 'ready')
  } catch (error) {
    sendText(response, 503, `storage unavailable: ${(error as Error).message}`)
  } finally {
    clearTimeout(timer)
  }
  return true
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
}

/** Serves files under `root` for GET and HEAD; `/` is `index.html`. Never leaves `root`. */
export const staticRoutes = (root: string): RequestHandler => async (request, response) => {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false
  let path: string
  try {
    path = decodeURIComponent(pathOf(request))
  } catch {
    return false
  }
  if (path.endsWith('/')) path += 'index.html'
  const file = normalize(join(root, path))
  if (!file.startsWith(root.endsWith(sep) ? root : root + sep)) return false
  const info = await stat(file).catch(() => null)
  if (info === null || !info.isFile()) return false
  const hashed = /[.-][0-9a-zA-Z_-]{8,}\.(js|css)$/.test(file)
  response.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': info.size,
    'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
  })
  if (request.method === 'HEAD') response.end()
  else createReadStream(file).pipe(response)
  return true
}
