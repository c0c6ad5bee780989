import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer } from 'ws'
import type { Logger } from 'pino'
import { checkOrigin, validateRoomName, type Access, type Authorize } from '../access.js'
import { clientAddress, type ConnectionCounter, type Slot } from '../connection-limits.js'
import { closeReason, SyncError, type ErrorCode } from '../errors.js'
import type { TrafficCounters } from '../metrics.js'
import type { InputBudget } from '../input-budget.js'
import { encodePermissionDenied } from '../protocol.js'
import { RateLimitStrikes } from '../rate-limit-strikes.js'
import type { Room } from '../room.js'
import type { Rooms } from '../rooms.js'
import { socketFailure } from './failures.js'
import { SharedFrame } from './shared-frame.js'
import { SocketPeer, type SocketPeerContext } from './socket-peer.js'

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
  /** The instance-wide budget of bytes held in unfinished input, shared with the other transports. */
  readonly inputBudget: InputBudget
  /** How long a message may take to arrive in full; slower closes the socket with 1008. */
  readonly inputTimeoutMs: number
  readonly onClose?: (code: number) => void
  /** Hears of every error answered to a client (metrics). */
  readonly onError?: (code: ErrorCode) => void
  /** Frames and bytes in and out, added to as they pass (metrics). */
  readonly counters?: TrafficCounters
}

/**
 * Serves rooms over WebSocket: accepts or refuses upgrades (origin, room name, capacity, authorization),
 * then hands each socket to a SocketPeer; keeps the heartbeat and the drain.
 */
export class WebSocketTransport {
  readonly #options: WebSocketOptions
  readonly #wss: WebSocketServer
  readonly #peers = new Set<SocketPeer>()
  readonly #peerContext: SocketPeerContext
  readonly #heartbeat: NodeJS.Timeout
  #accepting = true
  #nextId = 0

  constructor (options: WebSocketOptions) {
    this.#options = options
    // A broadcast's frame is framed once for all of its sockets (SharedFrame).
    this.#peerContext = { ...options, frames: new SharedFrame(), peers: this.#peers, strikes: new RateLimitStrikes() }
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes, perMessageDeflate: false })
    this.#heartbeat = setInterval(() => this.#ping(), options.pingIntervalMs)
    this.#heartbeat.unref()
  }

  get connections (): number {
    return this.#peers.size
  }

  /** The room named by a request URL, or null when the URL is not under the prefix. */
  roomOf (url: string | undefined): string | null {
    const path = (url ?? '/').split('?')[0]!
    if (!path.startsWith(this.#options.prefix)) return null
    return path.slice(this.#options.prefix.length)
  }

  handleUpgrade (request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { rooms } = this.#options
    socket.on('error', this.#onUpgradeSocketError)
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
    // An address whose socket went over its message rate waits a while (see rate-limit-strikes.ts).
    const pause = this.#peerContext.strikes.pause(address)
    if (pause > 0) {
      this.#options.onError?.('RATE_LIMITED')
      refuseUpgrade(socket, 429, 'too many messages lately; reconnect later', { 'Retry-After': String(Math.ceil(pause / 1000)) })
      return
    }
    // Capacity is refused before the upgrade, the cheapest answer: no socket, no room load. The stock
    // client counts it as a failed attempt and backs off (up to 2.5 s).
    let slot: Slot
    try {
      if (!rooms.canAcquire(name)) throw new SyncError('OVERLOADED', 'too many rooms loaded')
      slot = this.#options.connectionLimits.take(address, name)
    } catch (error) {
      const refusal = socketFailure(error, this.#options, { room: name, address }, 'connection')
      refuseUpgrade(socket, refusal.status, refusal.message, { 'Retry-After': '5' })
      return
    }
    // Until a peer owns the slot, the socket's end frees it: `ws` may refuse the handshake itself (a bad
    // key or version) or drop a socket that closed during authorization, and call back neither time.
    const releaseOnClose = (): void => slot.release()
    socket.once('close', releaseOnClose)
    Promise.resolve()
      .then(() => this.#options.authorize(request, name))
      .then((access) => {
        if (!this.#accepting) {
          slot.release()
          return refuseUpgrade(socket, 503, 'server restarting')
        }
        // The 101 response and sync step 1 (sent in this same tick when the room is loaded) leave in one write.
        socket.cork()
        this.#wss.handleUpgrade(request, socket, head, (ws) => {
          socket.removeListener('close', releaseOnClose)
          this.#accept(ws, address, name, access, slot)
        })
        process.nextTick(() => socket.uncork())
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
    const refusal = socketFailure(error, this.#options, { room, address }, 'connection')
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      ws.on('error', () => {})
      ws.send(encodePermissionDenied(refusal.message))
      ws.close(refusal.closeCode, closeReason(refusal.message))
      this.#options.onClose?.(refusal.closeCode)
    })
  }

  #accept (ws: WebSocket, address: string, name: string, access: Access, slot: Slot): void {
    let room: Room
    try {
      room = this.#options.rooms.acquire(name)
    } catch (error) {
      // Rooms filled up between the check before the upgrade and now.
      slot.release()
      const refusal = socketFailure(error, this.#options, { room: name, address }, 'connection')
      ws.close(refusal.closeCode, closeReason(refusal.message))
      this.#options.onClose?.(refusal.closeCode)
      return
    }
    // The peer registers itself with the transport and lives as long as its socket.
    const peer = new SocketPeer(this.#peerContext, ws, ++this.#nextId, address, room, slot, access.mode === 'write')
    if (access.expiresAt !== undefined) peer.endAt(access.expiresAt)
  }

  #ping (): void {
    for (const peer of this.#peers) {
      if (!peer.alive) {
        this.#options.log.debug({ peer: peer.label }, 'terminating a socket that missed a pong')
        peer.ws.terminate()
        continue
      }
      peer.alive = false
      peer.ws.ping()
    }
  }

  /**
   * One listener for every socket, not a closure per upgrade: a closure would keep the upgrade's scope,
   * and with it the whole request (headers and all), alive for as long as the socket lives.
   */
  #onUpgradeSocketError = (error: Error): void => {
    this.#options.log.debug({ err: error }, 'upgrade socket error')
  }

  /** Refuses new upgrades from now on. */
  stopAccepting (): void {
    this.#accepting = false
  }

  /** Closes every socket with `code`, spread evenly over `spreadMs`; resolves when all are closed. */
  async closeAll (code: number, reason: string, spreadMs: number): Promise<void> {
    const peers = [...this.#peers]
    const closedAll = peers.map((peer) => new Promise<void>((resolve) => {
      if (peer.ws.readyState === WebSocket.CLOSED) return resolve()
      peer.ws.once('close', () => resolve())
    }))
    peers.forEach((peer, i) => {
      const delay = peers.length > 1 ? (spreadMs * i) / (peers.length - 1) : 0
      setTimeout(() => peer.close(code, reason), delay).unref()
    })
    // A peer that does not answer the close handshake is cut after a grace period.
    const deadline = setTimeout(() => { for (const p of peers) p.ws.terminate() }, spreadMs + 2000)
    deadline.unref()
    await Promise.all(closedAll)
    clearTimeout(deadline)
  }

  close (): void {
    clearInterval(this.#heartbeat)
    for (const peer of this.#peers) peer.ws.terminate()
    this.#wss.close()
  }
}

const refuseUpgrade = (socket: Duplex, status: number, text: string, headers: Record<string, string> = {}): void => {
  const body = `${text}\n`
  const extra = Object.entries(headers).map(([key, value]) => `${key}: ${value}\r\n`).join('')
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n${extra}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}
