/**
 * Documents over HTTP, with the same `authorize` as sockets:
 *
 *   GET  /api/docs/<room>          JSON of the room's top-level types (see doc-json.ts)
 *   GET  /api/docs/<room>/update   the whole document as one binary Yjs update
 *   POST /api/docs/<room>/update   applies a binary Yjs update: stored, then sent to every client, then 200
 *
 * `<room>` is the same string as in a WebSocket URL (the raw path, not decoded), so both reach the same
 * room. A room that was never stored is a 404 for reads; a POST creates it. Reads never create a room.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import * as Y from 'yjs'
import { docToJson } from '../doc-json.js'
import { SyncError, type ErrorCode } from '../errors.js'
import type { Room } from '../room.js'
import { validateUpdate } from '../update-admission.js'
import type { Rooms } from '../rooms.js'
import type { Storage } from '../storage/storage.js'
import { pathOf, sendJson, type RequestHandler } from './responses.js'
import type { Access, Authorize } from '../access.js'

export interface DocApiOptions {
  readonly rooms: Rooms
  readonly storage: Storage
  readonly authorize: Authorize
  readonly log: Logger
  /** Largest POST body; a larger one is refused with 413. */
  readonly maxBodyBytes: number
  readonly onError?: (code: ErrorCode) => void
}

const BASE = '/api/docs/'
const UPDATE = '/update'

export const docApiRoutes = (options: DocApiOptions): RequestHandler => async (request, response) => {
  const path = pathOf(request)
  if (!path.startsWith(BASE)) return false
  const rest = path.slice(BASE.length)
  const binary = rest.endsWith(UPDATE)
  const room = binary ? rest.slice(0, -UPDATE.length) : rest
  const allowed = binary ? ['GET', 'POST'] : ['GET']
  try {
    if (room === '') throw new SyncError('BAD_ROOM', 'the URL names no room: /api/docs/<room>')
    if (!allowed.includes(request.method ?? '')) {
      response.setHeader('allow', allowed.join(', '))
      throw new SyncError('METHOD_NOT_ALLOWED', `${request.method ?? '?'} is not allowed here; use ${allowed.join(' or ')}`)
    }
    const access = await authorizeRequest(options, request, room)
    if (request.method === 'POST') await applyUpdate(options, request, response, room, access)
    else await read(options, response, room, binary)
  } catch (error) {
    const failure = error instanceof SyncError ? error : new SyncError('INTERNAL')
    if (failure.code === 'INTERNAL') options.log.error({ err: error, room, url: request.url }, 'document API request failed')
    else options.log.warn({ room, method: request.method, code: failure.code, detail: failure.message }, 'document API refused a request')
    options.onError?.(failure.code)
    if (response.headersSent) {
      response.destroy()
      return true
    }
    // A refused body is not read: close the connection rather than drain it.
    if (failure.code === 'MESSAGE_TOO_BIG') response.setHeader('connection', 'close')
    sendJson(response, failure.status, { error: failure.code, message: failure.message })
  }
  return true
}

const authorizeRequest = async (options: DocApiOptions, request: IncomingMessage, room: string): Promise<Access> => {
  try {
    return await options.authorize(request, room)
  } catch (error) {
    if (error instanceof SyncError) throw error
    options.log.error({ err: error, room }, 'authorize threw')
    throw new SyncError('INTERNAL')
  }
}

/** Holds the room loaded while `use` runs. `create: false` refuses a room that storage has never seen. */
const withRoom = async <T>(options: DocApiOptions, name: string, create: boolean, use: (room: Room) => Promise<T> | T): Promise<T> => {
  if (!create && options.rooms.get(name) === undefined && !(await options.storage.has(name))) {
    throw new SyncError('NOT_FOUND', `room "${name}" does not exist`)
  }
  const room = options.rooms.acquire(name)
  try {
    try {
      await room.loaded
    } catch {
      throw new SyncError('STORAGE_UNAVAILABLE', 'the room could not be loaded')
    }
    return await use(room)
  } finally {
    options.rooms.release(room)
  }
}

const read = async (options: DocApiOptions, response: ServerResponse, name: string, binary: boolean): Promise<void> => {
  await withRoom(options, name, false, (room) => {
    if (binary) {
      const update = Y.encodeStateAsUpdate(room.doc)
      response.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': update.length,
        'cache-control': 'no-store',
      })
      response.end(update)
    } else {
      sendJson(response, 200, docToJson(room.doc))
    }
  })
}

const applyUpdate = async (options: DocApiOptions, request: IncomingMessage, response: ServerResponse, name: string, access: Access): Promise<void> => {
  if (access.mode !== 'write') throw new SyncError('FORBIDDEN', 'read-only access to this room')
  const update = await readBody(request, options.maxBodyBytes)
  if (update.length === 0) throw new SyncError('BAD_UPDATE', 'the request body is empty; send a binary Yjs update')
  validateUpdate(update)
  await withRoom(options, name, true, async (room) => {
    if (!await room.submitAndWait(update)) {
      throw new SyncError('BAD_UPDATE', 'the update depends on content the room does not have; send it together with that content')
    }
  })
  sendJson(response, 200, { room: name, bytes: update.length })
}

const readBody = (request: IncomingMessage, limit: number): Promise<Uint8Array> => {
  const tooBig = (): SyncError => new SyncError('MESSAGE_TOO_BIG', `the body is larger than ${limit} bytes`)
  const declared = Number(request.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooBig())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let failed = false
    request.on('data', (chunk: Buffer) => {
      if (failed) return
      size += chunk.length
      if (size > limit) {
        failed = true
        reject(tooBig())
        return
      }
      chunks.push(chunk)
    })
    request.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)) })
    request.on('error', (error) => {
      if (failed) return
      failed = true
      reject(new SyncError('BAD_MESSAGE', `the request body could not be read: ${error.message}`))
    })
  })
}
