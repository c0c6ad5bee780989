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
import { clientAddress } from '../connection-limits.js'
import { docToJson } from '../doc-json.js'
import { SyncError, type ErrorCode } from '../errors.js'
import type { InputBudget } from '../input-budget.js'
import type { AddressRateLimit } from '../rate-limit.js'
import type { Room } from '../room.js'
import { validateUpdate } from '../update-admission.js'
import type { Rooms } from '../rooms.js'
import type { Storage } from '../storage/storage.js'
import { readBody } from './body-reader.js'
import { answerHttpError } from './failures.js'
import { pathOf, sendJson, type RequestHandler } from './responses.js'
import type { Access, Authorize } from '../access.js'

export interface DocApiOptions {
  readonly rooms: Rooms
  readonly storage: Storage
  readonly authorize: Authorize
  readonly log: Logger
  /** Largest POST body; a larger one is refused with 413. */
  readonly maxBodyBytes: number
  /** The instance-wide budget of bytes held in unfinished input, shared with the other transports. */
  readonly inputBudget: InputBudget
  /** How long a body may take to arrive in full; slower is answered 408. */
  readonly inputTimeoutMs: number
  /** Requests a client address may make (a bucket per address); over it, 429 before anything is read. */
  readonly requestLimit: AddressRateLimit
  /** Proxies whose `X-Forwarded-For` names the client, for the per-address limit. */
  readonly trustProxy: number
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
    const address = clientAddress(request, options.trustProxy)
    if (!options.requestLimit.take(address)) throw new SyncError('RATE_LIMITED', `more document API requests from ${address} than its limit allows; retry later`)
    const access = await options.authorize(request, room)
    if (request.method === 'POST') await applyUpdate(options, request, response, room, access)
    else await read(options, response, room, binary)
  } catch (error) {
    answerHttpError(request, response, error, { log: options.log, onError: options.onError, subject: 'document API request', json: true })
  }
  return true
}

/** Holds the room loaded while `use` runs. `create: false` refuses a room that storage has never seen. */
const withRoom = async <T>(options: DocApiOptions, name: string, create: boolean, use: (room: Room) => Promise<T> | T): Promise<T> => {
  if (!create && options.rooms.get(name) === undefined && !(await options.storage.has(name))) {
    throw new SyncError('NOT_FOUND', `room "${name}" does not exist`)
  }
  return options.rooms.use(name, use)
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
  const update = await readBody(request, { maxBytes: options.maxBodyBytes, budget: options.inputBudget, timeoutMs: options.inputTimeoutMs })
  if (update.length === 0) throw new SyncError('BAD_UPDATE', 'the request body is empty; send a binary Yjs update')
  validateUpdate(update)
  await withRoom(options, name, true, async (room) => {
    if (!await room.submitAndWait(update)) {
      throw new SyncError('BAD_UPDATE', 'the update depends on content the room does not have; send it together with that content')
    }
  })
  sendJson(response, 200, { room: name, bytes: update.length })
}
