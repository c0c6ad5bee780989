import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocket, type RawData } from 'ws'
import { EchoAllowance, isAwarenessEcho } from '../awareness-echo.js'
import type { Slot } from '../connection-limits.js'
import { closeReason, SyncError, type ErrorCode } from '../errors.js'
import type { InputBudget } from '../input-budget.js'
import type { TrafficCounters } from '../metrics.js'
import type { Peer } from '../peer.js'
import { decodeMessage } from '../protocol.js'
import { TokenBucket } from '../rate-limit.js'
import type { RateLimitStrikes } from '../rate-limit-strikes.js'
import type { Room } from '../room.js'
import type { Rooms } from '../rooms.js'
import { atExpiry, hasExpired, tokenExpired } from '../session-end.js'
import { socketFailure } from './failures.js'
import type { SharedFrame } from './shared-frame.js'
import { rawSocketOf, unfinishedBytes } from './unfinished-input.js'

/** What every socket of one transport shares: held once, not captured by closures per socket. */
export interface SocketPeerContext {
  readonly rooms: Rooms
  readonly log: Logger
  readonly frames: SharedFrame
  /** Every open socket peer of the transport (heartbeat, drain). */
  readonly peers: Set<SocketPeer>
  readonly maxBufferedBytes: number
  /** The largest frame; a socket may send twice this before its room has loaded. */
  readonly maxMessageBytes: number
  readonly maxConnectionAgeMs: number | null
  readonly messagesPerSecond: number
  readonly messageBurst: number
  readonly inputBudget: InputBudget
  readonly inputTimeoutMs: number
  /** Breaches of the message rate per address: transient closes first, final only when repeated. */
  readonly strikes: RateLimitStrikes
  readonly counters?: TrafficCounters
  readonly onClose?: (code: number) => void
  readonly onError?: (code: ErrorCode) => void
}

/**
 * Awareness echoes a socket may owe at once: a room sends each socket at most 20 awareness frames a
 * second, and a client a few seconds behind still owes only those.
 */
const ECHO_ALLOWANCE = 256

/** The peer a socket belongs to, kept on the socket so that one listener function serves every socket. */
const kPeer = Symbol('socket peer')
type PeerSocket = WebSocket & { [kPeer]: SocketPeer }

/**
 * One WebSocket serving one room. Its frames are handled one at a time, in order; frames that arrive
 * before the room has loaded wait for it. A frame that breaks the protocol closes the socket with a
 * documented code and never reaches the room.
 *
 * An idle server holds thousands of these, so a socket costs one object and no closures: the listeners
 * below are shared functions that find their peer on the socket.
 */
export class SocketPeer implements Peer {
  readonly ws: WebSocket
  readonly canWrite: boolean
  /** Set by the heartbeat before a ping, cleared by the pong. */
  alive = true
  readonly #ctx: SocketPeerContext
  readonly #id: number
  readonly #address: string
  readonly #room: Room
  readonly #slot: Slot
  readonly #bucket: TokenBucket
  /** Awareness echoes the socket may send without spending tokens (see awareness-echo.ts). */
  readonly #echoes = new EchoAllowance(ECHO_ALLOWANCE)
  #closed = false
  /** Frames received before the room loaded; null once joined. */
  #backlog: Uint8Array[] | null = []
  #backlogBytes = 0
  /** The largest frame sent since the socket's buffer was last empty: the slow-consumer bound allows it. */
  #largestPending = 0
  #ageTimer: NodeJS.Timeout | null = null
  /** Bytes of a message not yet complete, as counted in the instance's input budget. */
  #unfinished = 0
  /** Closes the socket when a message takes longer than `inputTimeoutMs` to arrive in full. */
  #inputTimer: NodeJS.Timeout | null = null
  /** A message completed since the last chunk was measured: the bytes held now belong to a newer one. */
  #completed = false
  /** When the socket's access ends (see session-end.ts), and the timer that ends it then. */
  #expiresAt: number | undefined = undefined
  #cancelExpiry: (() => void) | null = null

  /** Takes over `ws`; the room must have been acquired for it (it is released when the socket closes). */
  constructor (ctx: SocketPeerContext, ws: WebSocket, id: number, address: string, room: Room, slot: Slot, canWrite: boolean) {
    this.#ctx = ctx
    this.ws = ws
    this.#id = id
    this.#address = address
    this.#room = room
    this.#slot = slot
    this.canWrite = canWrite
    this.#bucket = new TokenBucket(ctx.messagesPerSecond, ctx.messageBurst)
    ;(ws as PeerSocket)[kPeer] = this
    ws.on('message', onMessage)
    ws.on('pong', onPong)
    ws.on('error', onError)
    ws.on('close', onClose)
    // Added after ws's own listener: by the time it runs, ws has parsed the chunk.
    const raw = rawSocketOf(ws)
    if (raw !== null) {
      ;(raw as Duplex & { [kPeer]?: SocketPeer })[kPeer] = this
      raw.on('data', onRawData)
    }
    ctx.peers.add(this)
    room.loaded.then(() => this.#join(), () => this.#fail(new SyncError('STORAGE_UNAVAILABLE', 'the room could not be loaded')))
    const maxAge = ctx.maxConnectionAgeMs
    if (maxAge !== null) {
      // Jitter spreads the reconnects of sockets opened together (after a restart) over time.
      this.#ageTimer = setTimeout(closeForAge, maxAge + Math.random() * maxAge * 0.1, this)
      this.#ageTimer.unref()
    }
  }

  get label (): string {
    return `ws#${this.#id} ${this.#address}`
  }

  /**
   * Ends the socket with 4401 "token expired" at `expiresAt` (ms since the epoch). Until its timer has
   * run, `send` and `received` check the time themselves: nothing passes either way once it is up.
   */
  endAt (expiresAt: number): void {
    this.#expiresAt = expiresAt
    this.#cancelExpiry = atExpiry(expiresAt, () => this.#expire())
  }

  #expire (): void {
    if (this.#closed) return
    const error = tokenExpired()
    this.#ctx.log.info({ room: this.#room.name, peer: this.label }, 'closing a socket whose token expired')
    this.close(error.closeCode, error.message)
  }

  send (frame: Uint8Array): void {
    const ws = this.ws
    if (ws.readyState !== WebSocket.OPEN || this.#closed) return
    if (hasExpired(this.#expiresAt)) return this.#expire()
    // A client that does not read would make the server hold every update for it, without end.
    // Closed, it reconnects and resyncs from the document instead. One frame may pass the bound alone: a
    // joiner's step 2 of a document bigger than the bound would close every joiner once.
    const buffered = ws.bufferedAmount
    if (buffered === 0) this.#largestPending = 0
    else if (buffered > this.#ctx.maxBufferedBytes + this.#largestPending) {
      this.#ctx.log.warn({ room: this.#room.name, peer: this.label, buffered }, 'closing a slow consumer')
      const slow = new SyncError('SLOW_CONSUMER')
      this.close(slow.closeCode, slow.message)
      return
    }
    if (frame.length > this.#largestPending) this.#largestPending = frame.length
    this.#echoes.sent(frame)
    this.#ctx.frames.send(ws, frame)
    const counters = this.#ctx.counters
    if (counters !== undefined) { counters.messagesOut++; counters.bytesOut += frame.length }
  }

  close (code: number, reason: string): void {
    if (this.#closed) return
    this.#closed = true
    this.ws.close(code, closeReason(reason))
  }

  #join (): void {
    if (this.#closed) return
    this.#room.join(this)
    const frames = this.#backlog!
    this.#backlog = null
    for (const frame of frames) this.#handle(frame)
  }

  #handle (frame: Uint8Array): void {
    if (this.#closed) return
    try {
      this.#room.receive(this, decodeMessage(frame))
    } catch (error) {
      this.#fail(error)
    }
  }

  #fail (error: unknown): void {
    const failure = socketFailure(error, this.#ctx, { room: this.#room.name, peer: this.label }, 'connection')
    this.close(failure.closeCode, failure.message)
  }

  /** Closes a socket over its rate: transient at first, final for an address that keeps doing it. */
  #rateLimited (): void {
    const detail = `more than ${this.#ctx.messagesPerSecond} messages a second`
    const strike = this.#ctx.strikes.strike(this.#address)
    this.#fail(new SyncError(strike === 'final' ? 'RATE_LIMITED_REPEATEDLY' : 'RATE_LIMITED', detail))
  }

  /** @internal Called by the socket's listeners only. */
  received (data: RawData, isBinary: boolean): void {
    if (this.#closed) return
    if (hasExpired(this.#expiresAt)) return this.#expire()
    this.#completed = true
    const frame = toBytes(data)
    const counters = this.#ctx.counters
    if (counters !== undefined) { counters.messagesIn++; counters.bytesIn += frame.length }
    // A stock client's echo of the room's own states changes nothing: dropped, and free up to one per
    // awareness frame the socket was sent, so a busy room's echoes do not count as the client's traffic.
    const echo = isBinary && this.#backlog === null && isAwarenessEcho(frame, this.#room.awareness)
    if (!(echo && this.#echoes.take()) && !this.#bucket.take()) return this.#rateLimited()
    if (!isBinary) return this.#fail(new SyncError('BAD_MESSAGE', 'text frames are not part of the protocol'))
    if (echo) return
    if (this.#backlog === null) return this.#handle(frame)
    // A client sends its step 1, its awareness and maybe its step 2 (the whole document) before it hears
    // from the room; held without a bound, frames of a room slow to load could fill memory.
    this.#backlogBytes += frame.length
    const limit = 2 * this.#ctx.maxMessageBytes
    if (this.#backlogBytes > limit) return this.#fail(new SyncError('OVERLOADED', `more than ${limit} bytes sent before the room loaded`))
    this.#backlog.push(frame)
  }

  /**
   * @internal After each chunk the socket reads: counts what it holds of an unfinished message against
   * the instance's budget, and starts or stops the clock on it.
   */
  measureInput (): void {
    if (this.#closed) return
    const held = unfinishedBytes(this.ws)
    const completed = this.#completed
    this.#completed = false
    if (held !== this.#unfinished && !this.#ctx.inputBudget.resize(this.#unfinished, held)) {
      return this.#refuseInput(new SyncError('OVERLOADED', 'the instance holds as much unfinished input as it allows; retry later'))
    }
    const started = this.#unfinished === 0 || completed
    this.#unfinished = held
    // The clock runs per message: a client streaming large messages back to back always holds part of
    // the next one, and each gets the whole time.
    if (held === 0) this.#stopInputClock()
    else if (started) {
      this.#stopInputClock()
      this.#inputTimer = setTimeout(inputTimedOut, this.#ctx.inputTimeoutMs, this)
    }
  }

  /** @internal */
  inputTimedOut (): void {
    this.#inputTimer = null
    this.#refuseInput(new SyncError('INPUT_TIMEOUT', `a message did not arrive in full within ${this.#ctx.inputTimeoutMs} ms`))
  }

  /** Closes the socket, and reads no more of it: what it holds goes with the close. */
  #refuseInput (error: SyncError): void {
    this.#fail(error)
    rawSocketOf(this.ws)?.pause()
  }

  #stopInputClock (): void {
    if (this.#inputTimer !== null) clearTimeout(this.#inputTimer)
    this.#inputTimer = null
  }

  /** @internal */
  errored (error: Error): void {
    this.#ctx.log.warn({ err: error, room: this.#room.name, peer: this.label }, 'socket error')
  }

  /** @internal */
  closed (code: number): void {
    const joined = this.#backlog === null
    this.#closed = true
    this.#slot.release()
    this.#ctx.peers.delete(this)
    if (this.#ageTimer !== null) clearTimeout(this.#ageTimer)
    this.#cancelExpiry?.()
    this.#stopInputClock()
    this.#ctx.inputBudget.resize(this.#unfinished, 0)
    this.#unfinished = 0
    if (joined) this.#room.leave(this)
    this.#ctx.rooms.release(this.#room)
    this.#ctx.onClose?.(code)
  }
}

const peerOf = (ws: WebSocket): SocketPeer => (ws as PeerSocket)[kPeer]
function onMessage (this: WebSocket, data: RawData, isBinary: boolean): void { peerOf(this).received(data, isBinary) }
function onPong (this: WebSocket): void { peerOf(this).alive = true }
function onError (this: WebSocket, error: Error): void { peerOf(this).errored(error) }
function onClose (this: WebSocket, code: number): void { peerOf(this).closed(code) }
function onRawData (this: Duplex & { [kPeer]?: SocketPeer }): void { this[kPeer]?.measureInput() }
const inputTimedOut = (peer: SocketPeer): void => peer.inputTimedOut()

const closeForAge = (peer: SocketPeer): void => {
  const limit = new SyncError('CONNECTION_AGE')
  peer.close(limit.closeCode, limit.message)
}

const toBytes = (data: RawData): Uint8Array => {
  if (Array.isArray(data)) return Buffer.concat(data)
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return data
}
