/**
 * SyncServer: what an embedder creates. It turns options (options.ts) into rooms (rooms.ts), the group
 * committer, and the transports that reach the rooms: WebSocket (transport/websocket.ts), long-polling
 * (transport/long-poll.ts) and the HTTP routes (health, metrics, documents, the editor's files). Every
 * transport asks `authorizeRequest` (access.ts) before a request touches a room, and counts against the
 * same connection limits (connection-limits.ts). It owns nothing global: several can share a process.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type * as Y from 'yjs'
import { checkedAuthorize, checkOrigin, normalizeOrigin, validateRoomName, type Access, type Authorize } from './access.js'
import { ConnectionCounter } from './connection-limits.js'
import { GroupCommitter } from './committer.js'
import { InputBudget } from './input-budget.js'
import { createLogger, urlForLog, type Logger } from './log.js'
import { HeadCheck } from './head-check.js'
import { measureBus, Metrics, metricsRoute } from './metrics.js'
import { AddressRateLimit } from './rate-limit.js'
import type { Room } from './room.js'
import { Rooms } from './rooms.js'
import { messageBurst, numberOption, OTHER_DEFAULTS, pathPrefix, type SyncServerOptions } from './options.js'
import { MemoryStorage } from './storage/memory.js'
import type { Storage } from './storage/storage.js'
import { docApiRoutes } from './transport/doc-api.js'
import { demoRoutes } from './transport/demo.js'
import { healthRoutes } from './transport/health.js'
import { answerHttpError } from './transport/failures.js'
import { sendText, type RequestHandler } from './transport/responses.js'
import { staticRoutes } from './transport/static-files.js'
import { LongPollTransport } from './transport/long-poll.js'
import { Webhooks } from './webhooks.js'
import { WebSocketTransport } from './transport/websocket.js'

/** A room held open for server-side use: it stays loaded until `release`. */
export interface RoomHandle {
  readonly name: string
  /**
   * The live document, to read. Edit with `transact`: an edit made on `doc` directly reaches clients
   * (those that join, resync or poll) before it is stored.
   */
  readonly doc: Y.Doc
  /** `SyncServer.transact` for this room. */
  transact<T> (change: (doc: Y.Doc) => T): Promise<T>
  /** Resolves when every change made so far is stored and sent. */
  flushed (): Promise<void>
  release (): void
}

/**
 * Connections the kernel queues for `listen`'s server until they are accepted (capped by the kernel's
 * `net.core.somaxconn`, 4096 on current Linux). Node's default, 511, overflows when a restart sends every
 * client back at once: an overflowed handshake is retried by the client's TCP after a full second.
 */
export const LISTEN_BACKLOG = 4096

/**
 * A sync server: rooms, their storage, and the transports that reach them. Create as many as you like in
 * one process; each owns only what it was given. Attach it to an existing `http.Server`, or let it listen.
 */
export class SyncServer {
  readonly log: Logger
  readonly storage: Storage
  readonly rooms: Rooms
  /** This server's metrics; `metrics.registry` is a prom-client Registry of its own. */
  readonly metrics: Metrics
  readonly #webhooks: Webhooks | null
  readonly #committer: GroupCommitter
  /** With a bus and storage that numbers commits: catches up rooms whose bus messages were lost. */
  readonly #headCheck: HeadCheck | null
  readonly #ws: WebSocketTransport
  readonly #poll: LongPollTransport
  readonly #routes: RequestHandler[]
  readonly #shutdownSpreadMs: number
  readonly #authorize: Authorize
  readonly #allowedOrigins: ReadonlySet<string> | null
  readonly #maxRoomNameLength: number
  readonly #inputBudget: InputBudget
  #state: 'running' | 'draining' | 'closed' = 'running'
  #httpServer: Server | null = null

  constructor (options: SyncServerOptions = {}) {
    const prefix = pathPrefix('prefix', options.prefix ?? OTHER_DEFAULTS.prefix)
    this.log = options.logger ?? createLogger('info')
    this.storage = options.storage ?? new MemoryStorage()
    const metrics = this.metrics = new Metrics({ rooms: () => this.rooms.size, unfinishedInput: () => this.#inputBudget.held, processMetrics: options.processMetrics ?? OTHER_DEFAULTS.processMetrics })
    const webhooks = this.#webhooks = options.webhook == null
      ? null
      : new Webhooks(options.webhook, { log: this.log, withDoc: (room, read) => this.#withDoc(room, read), onDelivery: metrics.webhook })
    this.#committer = new GroupCommitter(this.storage, this.log, metrics.commit, (room, durationMs) => {
      metrics.applied(durationMs)
      webhooks?.changed(room.name)
    })
    const bus = options.bus ?? null
    this.rooms = new Rooms({
      storage: this.storage,
      commits: this.#committer,
      bus: bus === null ? null : measureBus(bus, metrics.busLag),
      log: this.log,
      compactAfterRows: numberOption('compactAfterRows', options.compactAfterRows),
      onCatchUp: metrics.caughtUp,
      onRefused: metrics.refused,
      maxAwarenessStates: numberOption('maxAwarenessStatesPerRoom', options.maxAwarenessStatesPerRoom),
      onSkipped: metrics.skipped,
    }, { idleMs: numberOption('roomIdleMs', options.roomIdleMs), maxRooms: numberOption('maxRooms', options.maxRooms) })
    const heads = this.storage.heads?.bind(this.storage)
    this.#headCheck = bus === null || heads === undefined ? null : new HeadCheck(this.rooms, heads, this.log)
    this.#shutdownSpreadMs = numberOption('shutdownSpreadMs', options.shutdownSpreadMs)
    const maxAge = options.maxConnectionAgeMs == null ? null : numberOption('maxConnectionAgeMs', options.maxConnectionAgeMs)
    // One authorize for every transport, so that whatever decides access decides it the same way for all:
    // room name (BAD_ROOM), Origin (BAD_ORIGIN), then the token or the embedder's check. The WebSocket
    // transport runs the first two itself, before the upgrade, and then the embedder's check.
    const authorize: Authorize = (request, room) => this.authorizeRequest(request, room)
    const maxMessageBytes = numberOption('maxMessageBytes', options.maxMessageBytes)
    const pollPrefix = pathPrefix('pollPrefix', options.pollPrefix ?? OTHER_DEFAULTS.pollPrefix)
    if (pollPrefix === '/') throw new TypeError('pollPrefix must not be "/": it would take every path')
    this.#authorize = checkedAuthorize(options.authorize ?? (() => ({ mode: 'write' })))
    this.#allowedOrigins = options.allowedOrigins == null ? null : new Set(options.allowedOrigins.map((origin) => {
      try {
        return normalizeOrigin(origin)
      } catch {
        throw new TypeError(`allowedOrigins: "${origin}" is not an origin such as https://app.example.com`)
      }
    }))
    this.#maxRoomNameLength = numberOption('maxRoomNameLength', options.maxRoomNameLength)
    const trustProxy = numberOption('trustProxy', options.trustProxy)
    const messagesPerSecond = numberOption('messagesPerSecond', options.messagesPerSecond)
    const pollRequestsPerSecond = numberOption('pollRequestsPerSecond', options.pollRequestsPerSecond)
    // Sockets and held polls count against the same limits: both are clients waiting on this instance.
    const inputBudget = this.#inputBudget = new InputBudget(numberOption('maxUnfinishedInputBytes', options.maxUnfinishedInputBytes))
    const inputTimeoutMs = numberOption('inputTimeoutMs', options.inputTimeoutMs)
    const docRequestsPerSecond = numberOption('docRequestsPerSecond', options.docRequestsPerSecond)
    const connectionLimits = new ConnectionCounter({
      maxConnections: numberOption('maxConnections', options.maxConnections),
      maxConnectionsPerIp: numberOption('maxConnectionsPerIp', options.maxConnectionsPerIp),
      maxConnectionsPerRoom: numberOption('maxConnectionsPerRoom', options.maxConnectionsPerRoom),
    })
    this.#ws = new WebSocketTransport({
      rooms: this.rooms,
      log: this.log,
      authorize: this.#authorize,
      allowedOrigins: this.#allowedOrigins,
      maxRoomNameLength: this.#maxRoomNameLength,
      trustProxy,
      connectionLimits,
      messagesPerSecond,
      messageBurst: messageBurst(options),
      maxBufferedBytes: numberOption('maxBufferedBytes', options.maxBufferedBytes),
      prefix,
      maxMessageBytes,
      pingIntervalMs: numberOption('pingIntervalMs', options.pingIntervalMs),
      maxConnectionAgeMs: maxAge,
      inputBudget,
      inputTimeoutMs,
      counters: metrics.transport('websocket', () => this.#ws.connections),
      onClose: metrics.closed,
      onError: metrics.error,
    })
    this.#poll = new LongPollTransport({
      rooms: this.rooms,
      log: this.log,
      authorize,
      prefix: pollPrefix,
      maxMessageBytes,
      inputBudget,
      inputTimeoutMs,
      holdMs: numberOption('pollHoldMs', options.pollHoldMs),
      maxHeldPolls: numberOption('maxHeldPolls', options.maxHeldPolls),
      connectionLimits,
      trustProxy,
      requestLimit: new AddressRateLimit(pollRequestsPerSecond, 2 * pollRequestsPerSecond),
      // A held poll counts as a connection: it is a client waiting on this instance.
      counters: metrics.transport('poll', () => this.#poll.heldPolls),
      onError: metrics.error,
    })
    this.#routes = [
      healthRoutes({ accepting: () => this.#state === 'running', checkStorage: () => this.storage.check() }),
      this.#poll.handle,
    ]
    if (options.metrics ?? OTHER_DEFAULTS.metrics) this.#routes.push(metricsRoute(metrics, options.metricsToken ?? null))
    if (options.docApi ?? OTHER_DEFAULTS.docApi) {
      this.#routes.push(docApiRoutes({
        rooms: this.rooms,
        storage: this.storage,
        authorize,
        log: this.log,
        maxBodyBytes: maxMessageBytes,
        inputBudget,
        inputTimeoutMs,
        requestLimit: new AddressRateLimit(docRequestsPerSecond, 2 * docRequestsPerSecond),
        trustProxy,
        onError: metrics.error,
      }))
    }
    this.#routes.push(demoRoutes({ rooms: this.rooms, log: this.log, enabled: options.demo ?? OTHER_DEFAULTS.demo }))
    if (options.webRoot != null) this.#routes.push(staticRoutes(options.webRoot))
  }

  /** Open WebSocket connections. */
  get connections (): number {
    return this.#ws.connections
  }

  /** Long polls held open now. */
  get heldPolls (): number {
    return this.#poll.heldPolls
  }

  /** Bytes held now in unfinished WebSocket messages and request bodies (see `maxUnfinishedInputBytes`). */
  get unfinishedInputBytes (): number {
    return this.#inputBudget.held
  }

  /** Whether the server takes new clients (false once draining). */
  get accepting (): boolean {
    return this.#state === 'running'
  }

  /**
   * The checks every transport runs before a request touches `room`: a valid room name (BAD_ROOM), an
   * allowed Origin (BAD_ORIGIN), then `authorize` (UNAUTHENTICATED, FORBIDDEN). Rejects with a SyncError
   * whose `status` is the HTTP answer; resolves with the access granted.
   */
  async authorizeRequest (request: IncomingMessage, room: string): Promise<Access> {
    validateRoomName(room, this.#maxRoomNameLength)
    checkOrigin(request.headers.origin, this.#allowedOrigins)
    return this.#authorize(request, room)
  }

  /** Takes over an HTTP upgrade request (`server.on('upgrade', ...)`). */
  handleUpgrade (request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#ws.handleUpgrade(request, socket, head)
  }

  /** Answers a request this server owns (health, long-polling, static editor); resolves false for anything else. */
  async handleRequest (request: IncomingMessage, response: ServerResponse): Promise<boolean> {
    for (const route of this.#routes) {
      if (await route(request, response)) return true
    }
    return false
  }

  /** Serves upgrades (and, with `requests`, the server's HTTP routes) of an existing HTTP server. */
  attach (server: Server, { requests = false }: { requests?: boolean } = {}): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(request, socket, head))
    if (requests) server.on('request', (request: IncomingMessage, response: ServerResponse) => this.#serve(request, response))
  }

  /** Creates an HTTP server for this sync server alone and listens on it. */
  async listen (port = 0, host = '127.0.0.1', backlog = LISTEN_BACKLOG): Promise<AddressInfo> {
    const server = this.#httpServer = createServer()
    this.attach(server, { requests: true })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ port, host, backlog }, () => { server.off('error', reject); resolve() })
    })
    return server.address() as AddressInfo
  }

  #serve (request: IncomingMessage, response: ServerResponse): void {
    this.handleRequest(request, response).then((handled) => {
      if (!handled) sendText(response, 404, 'not found')
    }, (error: unknown) => answerHttpError(request, response, error, { log: this.log, subject: 'request' }))
  }

  /** Loads a room (if needed) and holds it for server-side reads and writes until `release`. */
  async openRoom (name: string): Promise<RoomHandle> {
    const room = await this.rooms.open(name)
    let released = false
    return {
      name,
      doc: room.doc,
      transact: (change) => room.transact(change),
      flushed: () => room.flushed(),
      release: () => {
        if (released) return
        released = true
        this.rooms.release(room)
      },
    }
  }

  /**
   * Runs `change` in one transaction on a copy of the room's document and resolves with what it returned
   * once the change is stored and sent to every client; no client sees it before it is stored. Rejects
   * (STORAGE_UNAVAILABLE), changing nothing, if it could not be stored.
   */
  async transact<T> (name: string, change: (doc: Y.Doc) => T): Promise<T> {
    return this.rooms.use(name, (room) => room.transact(change))
  }

  async #withDoc<T> (name: string, read: (doc: Y.Doc) => T): Promise<T> {
    return this.rooms.use(name, (room) => read(room.doc))
  }

  /** The loaded room of that name, if any (for transports and metrics). */
  loadedRoom (name: string): Room | undefined {
    return this.rooms.get(name)
  }

  /**
   * Graceful shutdown, step one: readiness fails and upgrades are refused, pending commits finish, and
   * sockets close with 1012 spread over `shutdownSpreadMs` so clients reconnect elsewhere, not in one wave.
   * Nothing here is needed for durability: every update a client has seen is committed already.
   */
  async drain (): Promise<void> {
    if (this.#state !== 'running') return
    this.#state = 'draining'
    this.#ws.stopAccepting()
    this.#poll.stopAccepting()
    await this.#committer.idle()
    await this.#ws.closeAll(1012, 'server restarting', this.#shutdownSpreadMs)
  }

  /** Closes everything: sockets, rooms (flushed and compacted), storage, and the HTTP server if it made one. */
  async close (): Promise<void> {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#headCheck?.close()
    this.#ws.stopAccepting()
    this.#ws.close()
    this.#poll.close()
    await this.#committer.idle()
    await this.#webhooks?.close()
    await this.rooms.closeAll()
    await this.#committer.idle()
    const server = this.#httpServer
    if (server !== null) {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** Creates a sync server; see SyncServerOptions. */
export const createSyncServer = (options: SyncServerOptions = {}): SyncServer => new SyncServer(options)
