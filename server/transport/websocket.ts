import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import type { Logger } from 'pino'
import { checkOrigin, clientAddress, validateRoomName, type ConnectionCounter, type Slot } from '../admission.js'
import { closeReason, SyncError, type ErrorCode } from '../errors.js'
import type { TrafficCounters } from '../metrics.js'
import type { Peer } from '../peer.js'
import { decodeMessage, encodePermissionDenied, ProtocolError } from '../protocol.js'
import { TokenBucket } from '../rate-limit.js'
import type { Room } from '../room.js'
import type { Rooms } from '../rooms.js'
import { SharedFrame } from './shared-frame.js'

export interface Access {
  /** `read`: receives everything, may change nothing. */
  readonly mode: 'read' | 'write'
}

/** Decides who may open `room`. Throw a SyncError (UNAUTHENTICATED, FORBIDDEN, ...) to refuse. */
export type Authorize = (request: IncomingMessage, room: string) => Access | Promise<Access>

export interface WebSocketOptions {
  readonly rooms: Rooms
  readonly log: Logger
  readonly authorize: Authorize
  /** The room is the URL path after this prefix, query string excluded, not decoded (as the reference server). */
  readonly prefix: string
  readonly maxMessageBytes: number
  readonly pingIntervalMs: number
  readonly maxConnectionAgeMs: number | null
  /** Normalized origins a browser page may connect from; null: any. */
  readonly allowedOrigins: ReadonlySet<string> | null
  readonly maxRoomNameLength: number
  /** Proxies in front whose `X-Forwarded-For` entries are trusted (0: none). */
  readonly trustProxy: number
  readonly connectionLimits: ConnectionCounter
  /** Token bucket per socket: sustained messages a second, and the burst allowed on top. */
  readonly messagesPerSecond: number
  readonly messageBurst: number
  /** A socket whose unsent data passes this many bytes is closed with SLOW_CONSUMER. */
  readonly maxBufferedBytes: number
  readonly onClose?: (code: number) => void
  /** Hears of every error answered to a client (metrics). */
  readonly onError?: (code: ErrorCode) => void
  /** Frames and bytes in and out, added to as they pass (metrics). */
  readonly counters?: TrafficCounters
}

interface Connection {
  readonly ws: WebSocket
  readonly peer: Peer
  alive: boolean
}

/**
 * Serves rooms over WebSocket, one socket per peer. Each socket's frames are handled one at a time, in
 * order; frames that arrive before the room has loaded wait for it. A frame that breaks the protocol
 * closes its own socket with a documented code and never reaches the room.
 */
export class WebSocketTransport {
  readonly #options: WebSocketOptions
  readonly #wss: WebSocketServer
  readonly #connections = new Set<Connection>()
  readonly #heartbeat: NodeJS.Timeout
  /** A broadcast's frame, framed once for all of its sockets. */
  readonly #frames = new SharedFrame()
  #accepting = true
  #nextId = 0

  constructor (options: WebSocketOptions) {
    this.#options = options
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes, perMessageDeflate: false })
    this.#heartbeat = setInterval(() => this.#ping(), options.pingIntervalMs)
    this.#heartbeat.unref()
  }

  get connections (): number {
    return this.#connections.size
  }

  /** The room named by a request URL, or null when the URL is not under the prefix. */
  roomOf (url: string | undefined): string | null {
    const path = (url ?? '/').split('?')[0]!
    if (!path.startsWith(this.#options.prefix)) return null
    return path.slice(this.#options.prefix.length)
  }

  handleUpgrade (request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { log, rooms } = this.#options
    socket.on('error', (error) => log.debug({ err: error }, 'upgrade socket error'))
    if (!this.#accepting) {
      refuseUpgrade(socket, 503, 'server restarting')
      return
    }
    const name = this.roomOf(request.url)
    if (name === null) {
      refuseUpgrade(socket, 404, 'not found')
      return
    }
    const address = clientAddress(request, this.#options.trustProxy)
    try {
      checkOrigin(request.headers.origin, this.#options.allowedOrigins)
      validateRoomName(name, this.#options.maxRoomNameLength)
    } catch (error) {
      this.#refuse(request, socket, head, error, name, address)
      return
    }
    // Capacity is refused before the upgrade, the cheapest answer: no socket, no room load. The stock
    // client counts it as a failed attempt and backs off (up to 2.5 s).
    let slot: Slot
    try {
      if (!rooms.canAcquire(name)) throw new SyncError('OVERLOADED', 'too many rooms loaded')
      slot = this.#options.connectionLimits.admit(address, name)
    } catch (error) {
      const refusal = error as SyncError
      log.warn({ room: name, address, detail: refusal.message }, 'refusing a connection: over capacity')
      this.#options.onError?.(refusal.code)
      refuseUpgrade(socket, refusal.status, refusal.message, { 'Retry-After': '5' })
      return
    }
    Promise.resolve()
      .then(() => this.#options.authorize(request, name))
      .then((access) => {
        if (!this.#accepting) {
          slot.release()
          return refuseUpgrade(socket, 503, 'server restarting')
        }
        this.#wss.handleUpgrade(request, socket, head, (ws) => this.#accept(ws, address, name, access, slot))
      }, (error: unknown) => {
        slot.release()
        this.#refuse(request, socket, head, error, name, address)
      })
  }

  /**
   * Upgrades, says why, and closes with a code the stock client treats as final: a plain HTTP 401 or
   * 403 carries no close code, and the client would retry it forever. Nothing of the room is sent.
   */
  #refuse (request: IncomingMessage, socket: Duplex, head: Buffer, error: unknown, room: string, address: string): void {
    const refusal = error instanceof SyncError ? error : new SyncError('INTERNAL')
    if (!(error instanceof SyncError)) this.#options.log.error({ err: error, room }, 'authorize threw')
    else this.#options.log.info({ room, address, code: refusal.code, detail: refusal.message }, 'refused a connection')
    this.#options.onError?.(refusal.code)
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      ws.on('error', () => {})
      ws.send(encodePermissionDenied(refusal.message))
      ws.close(refusal.closeCode, closeReason(refusal.message))
      this.#options.onClose?.(refusal.closeCode)
    })
  }

  #accept (ws: WebSocket, address: string, name: string, access: Access, slot: Slot): void {
    const { rooms, log, maxBufferedBytes } = this.#options
    const id = ++this.#nextId
    const bucket = new TokenBucket(this.#options.messagesPerSecond, this.#options.messageBurst)
    let closed = false
    let joined = false
    let backlog: Uint8Array[] = []
    let ageTimer: NodeJS.Timeout | null = null
    const counters = this.#options.counters

    const peer: Peer = {
      canWrite: access.mode === 'write',
      label: `ws#${id} ${address}`,
      send: (frame) => {
        if (ws.readyState !== WebSocket.OPEN || closed) return
        // A client that does not read would make the server hold every update for it, without end.
        // Closed, it reconnects and resyncs from the document instead.
        if (ws.bufferedAmount > maxBufferedBytes) {
          log.warn({ room: name, peer: peer.label, buffered: ws.bufferedAmount }, 'closing a slow consumer')
          const slow = new SyncError('SLOW_CONSUMER')
          peer.close(slow.closeCode, slow.message)
          return
        }
        this.#frames.send(ws, frame)
        if (counters !== undefined) { counters.messagesOut++; counters.bytesOut += frame.length }
      },
      close: (code, reason) => {
        if (closed) return
        closed = true
        ws.close(code, closeReason(reason))
      },
    }
    let room: Room
    try {
      room = rooms.acquire(name)
    } catch (error) {
      // Rooms filled up between the check before the upgrade and now.
      slot.release()
      const refusal = error instanceof SyncError ? error : new SyncError('INTERNAL')
      ws.close(refusal.closeCode, closeReason(refusal.message))
      this.#options.onClose?.(refusal.closeCode)
      return
    }
    const connection: Connection = { ws, peer, alive: true }
    this.#connections.add(connection)

    const fail = (error: unknown): void => {
      const failure = error instanceof SyncError
        ? error
        : error instanceof ProtocolError ? new SyncError('BAD_MESSAGE', error.message) : new SyncError('INTERNAL')
      if (failure.code === 'INTERNAL') log.error({ err: error, room: name, peer: peer.label }, 'closing a connection after an internal error')
      else log.warn({ room: name, peer: peer.label, code: failure.code, detail: failure.message }, 'closing a connection that sent bad input')
      this.#options.onError?.(failure.code)
      peer.close(failure.closeCode, failure.message)
    }

    const handle = (frame: Uint8Array): void => {
      if (closed) return
      try {
        room.receive(peer, decodeMessage(frame))
      } catch (error) {
        fail(error)
      }
    }

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (closed) return
      if (!bucket.take()) return fail(new SyncError('RATE_LIMITED', `more than ${this.#options.messagesPerSecond} messages a second`))
      if (!isBinary) return fail(new SyncError('BAD_MESSAGE', 'text frames are not part of the protocol'))
      const frame = toBytes(data)
      if (counters !== undefined) { counters.messagesIn++; counters.bytesIn += frame.length }
      if (joined) handle(frame)
      else backlog.push(frame)
    })
    ws.on('pong', () => { connection.alive = true })
    ws.on('error', (error) => log.warn({ err: error, room: name, peer: peer.label }, 'socket error'))
    ws.on('close', (code) => {
      closed = true
      slot.release()
      this.#connections.delete(connection)
      if (ageTimer !== null) clearTimeout(ageTimer)
      if (joined) room.leave(peer)
      rooms.release(room)
      this.#options.onClose?.(code)
    })

    room.loaded.then(() => {
      if (closed) return
      room.join(peer)
      joined = true
      const frames = backlog
      backlog = []
      for (const frame of frames) handle(frame)
    }, () => {
      fail(new SyncError('STORAGE_UNAVAILABLE', 'the room could not be loaded'))
    })

    const maxAge = this.#options.maxConnectionAgeMs
    if (maxAge !== null) {
      // Jitter spreads the reconnects of sockets opened together (after a restart) over time.
      ageTimer = setTimeout(() => {
        const limit = new SyncError('CONNECTION_AGE')
        peer.close(limit.closeCode, limit.message)
      }, maxAge + Math.random() * maxAge * 0.1)
      ageTimer.unref()
    }
  }

  #ping (): void {
    for (const connection of this.#connections) {
      if (!connection.alive) {
        this.#options.log.debug({ peer: connection.peer.label }, 'terminating a socket that missed a pong')
        connection.ws.terminate()
        continue
      }
      connection.alive = false
      connection.ws.ping()
    }
  }

  /** Refuses new upgrades from now on. */
  stopAccepting (): void {
    this.#accepting = false
  }

  /** Closes every socket with `code`, spread evenly over `spreadMs`; resolves when all are closed. */
  async closeAll (code: number, reason: string, spreadMs: number): Promise<void> {
    const connections = [...this.#connections]
    const closedAll = connections.map((connection) => new Promise<void>((resolve) => {
      if (connection.ws.readyState === WebSocket.CLOSED) return resolve()
      connection.ws.once('close', () => resolve())
    }))
    connections.forEach((connection, i) => {
      const delay = connections.length > 1 ? (spreadMs * i) / (connections.length - 1) : 0
      setTimeout(() => connection.peer.close(code, reason), delay).unref()
    })
    // A peer that does not answer the close handshake is cut after a grace period.
    const deadline = setTimeout(() => { for (const c of connections) c.ws.terminate() }, spreadMs + 2000)
    deadline.unref()
    await Promise.all(closedAll)
    clearTimeout(deadline)
  }

  close (): void {
    clearInterval(this.#heartbeat)
    for (const connection of this.#connections) connection.ws.terminate()
    this.#wss.close()
  }
}

const toBytes = (data: RawData): Uint8Array => {
  if (Array.isArray(data)) return Buffer.concat(data)
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return data
}

const refuseUpgrade = (socket: Duplex, status: number, text: string, headers: Record<string, string> = {}): void => {
  const body = `${text}\n`
  const extra = Object.entries(headers).map(([key, value]) => `${key}: ${value}\r\n`).join('')
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n${extra}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}
