import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { extname, join, normalize, sep } from 'node:path'
import { pathOf, type RequestHandler } from './responses.js'

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

/** Compressed siblings the build writes next to the editor's files (`main-….js.br`), best first. */
const PRECOMPRESSED = [{ encoding: 'br', suffix: '.br' }, { encoding: 'gzip', suffix: '.gz' }] as const

/** Whether the request's Accept-Encoding takes `encoding` (by name or `*`, with a q-value above 0). */
export const acceptsEncoding = (header: string | undefined, encoding: string): boolean => {
  if (header === undefined) return false
  let star = false
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';')
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    const allowed = q === undefined || Number(q.slice(2)) > 0
    if (name === encoding) return allowed
    if (name === '*') star = allowed
  }
  return star
}

/**
 * Serves files under `root` for GET and HEAD; `/` is `index.html`. Never leaves `root`. A file with an
 * up-to-date precompressed sibling (`.br`, `.gz`) is sent compressed to a client that accepts it; every
 * response carries an ETag, and a matching If-None-Match gets 304.
 */
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
  let body = { file, size: info.size, encoding: null as string | null }
  for (const { encoding, suffix } of PRECOMPRESSED) {
    if (!acceptsEncoding(request.headers['accept-encoding'], encoding)) continue
    const packed = await stat(file + suffix).catch(() => null)
    // A sibling older than its file is left from an earlier build: not this file's bytes.
    if (packed === null || !packed.isFile() || packed.mtimeMs < info.mtimeMs) continue
    body = { file: file + suffix, size: packed.size, encoding }
    break
  }
  const hashed = /[.-][0-9a-zA-Z_-]{8,}\.(js|css)$/.test(file)
  const etag = `"${info.size.toString(36)}-${Math.floor(info.mtimeMs).toString(36)}${body.encoding === null ? '' : `-${body.encoding}`}"`
  const headers: Record<string, string | number> = {
    'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    etag,
    vary: 'accept-encoding',
    'x-content-type-options': 'nosniff',
  }
  if (request.headers['if-none-match']?.split(',').some((tag) => tag.trim() === etag) === true) {
    response.writeHead(304, headers)
    response.end()
    return true
  }
  response.writeHead(200, {
    ...headers,
    'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': body.size,
    ...(body.encoding === null ? {} : { 'content-encoding': body.encoding }),
  })
  if (request.method === 'HEAD') response.end()
  else createReadStream(body.file).pipe(response)
  return true
}
