/**
 * The reconnect demo: lets the web editor show what happens when a host drops sockets, without waiting an
 * hour or restarting anything. The actions exist only when the server runs with `DEMO=true`; otherwise
 * they are 404 like any unknown path.
 *
 * - `GET /api/demo`: `{ "enabled": true | false }`, so the page knows whether to show its buttons without
 *   provoking a 404 (which a browser logs as a console error).
 * - `POST /api/demo/<room>/close-me?client=<awareness clientID>`: closes the connection that announced
 *   that awareness client id with 4000, as the connection-age limit would.
 * - `POST /api/demo/<room>/restart`: closes every connection of the room with 1012, as an instance
 *   restart would. The process keeps running; the room's document stays loaded.
 *
 * `<room>` is the URL-encoded room exactly as it appears in the WebSocket URL (not decoded, as there).
 */
import type { Logger } from 'pino'
import { SyncError } from '../errors.js'
import type { Rooms } from '../rooms.js'
import { pathOf, sendJson, sendText, type RequestHandler } from './responses.js'

export interface DemoOptions {
  readonly rooms: Rooms
  readonly log: Logger
  /** Whether the actions are served. */
  readonly enabled: boolean
}

const ROUTE = /^\/api\/demo\/(.+)\/(close-me|restart)$/

export const demoRoutes = ({ rooms, log, enabled }: DemoOptions): RequestHandler => (request, response) => {
  const path = pathOf(request)
  if (path === '/api/demo') {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false
    sendJson(response, 200, { enabled })
    return true
  }
  const match = enabled ? ROUTE.exec(path) : null
  if (match === null) return false
  if (request.method !== 'POST') {
    sendText(response, 405, 'use POST', { allow: 'POST' })
    return true
  }
  // The WebSocket transport names a room by the raw (still encoded) path, so this does too.
  const name = match[1]!
  const room = rooms.get(name)
  if (room === undefined) {
    sendText(response, 404, `room "${name}" has no connections on this instance`)
    return true
  }
  if (match[2] === 'restart') {
    const restart = new SyncError('SHUTTING_DOWN', 'server restarting (demo)')
    const peers = [...room.peers]
    for (const peer of peers) peer.close(restart.closeCode, restart.message)
    log.info({ room: name, closed: peers.length }, 'demo: closed every connection of a room with 1012')
    sendJson(response, 200, { closed: peers.length, code: restart.closeCode })
    return true
  }
  const client = new URL(request.url ?? '/', 'http://x').searchParams.get('client') ?? ''
  if (!/^\d+$/.test(client)) {
    sendText(response, 400, 'client must be an awareness client id (a whole number)')
    return true
  }
  const id = Number(client)
  const peer = room.awarenessOwner(id)
  if (peer === undefined) {
    sendText(response, 404, `no connection of room "${name}" announced awareness client ${id}`)
    return true
  }
  const age = new SyncError('CONNECTION_AGE', 'connection age limit reached (demo)')
  peer.close(age.closeCode, age.message)
  log.info({ room: name, client: id, peer: peer.label }, 'demo: closed one connection with 4000')
  sendJson(response, 200, { closed: 1, code: age.closeCode })
  return true
}
