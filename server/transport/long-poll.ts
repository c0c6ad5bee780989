import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { clientAddress, type ConnectionCounter } from '../connection-limits.js'
import { SyncError, type ErrorCode } from '../errors.js'
import type { InputBudget } from '../input-budget.js'
import type { TrafficCounters } from '../metrics.js'
import type { AddressRateLimit } from '../rate-limit.js'
import * as protocol from '../protocol.js'
import type { Peer } from '../peer.js'
import type { Room } from '../room.js'
import type { Rooms } from '../rooms.js'
import { atExpiry, hasExpired, tokenExpired } from '../session-end.js'
import { readBody } from './body-reader.js'
import { answerHttpError } from './failures.js'
import { pathOf, type RequestHandler } from './responses.js'
import {
  awarenessToSend, clientLacks, decodePollRequest, encodeFrames, PollWireError,
  type AwarenessClock, type PollRequest,
} from './long-poll-wire.js'
import { heldClocks, HeldSnapshot, type RoomChange } from './held-snapshot.js'
import { planSend, sendMessages } from './long-poll-send.js'
import type { Access, Authorize } from '../access.js'

export interface LongPollOptions {
  readonly rooms: Rooms
  readonly log: Logger
  /** The same function the WebSocket transport asks: one decision for both. */
  readonly authorize: Authorize
  /** Requests under this path are ours; the room is the rest of the path, query excluded, not decoded. */
  readonly prefix: string
  /** Largest request body; a larger one is answered 413. */
  readonly maxMessageBytes: number
  /** The instance-wide budget of bytes held in unfinished input, shared with the other transports. */
  readonly inputBudget: InputBudget
  /** How long a request body may take to arrive in full; slower is answered 408. */
  readonly inputTimeoutMs: number
  /** How long a poll is held when there is nothing to answer. */
  readonly holdMs: number
  /** Polls held at once by this instance; past it a poll that would be held is answered 503. */
  readonly maxHeldPolls: number
  /**
   * The connection limits the WebSocket transport counts against (per instance, per address, per room):
   * a held poll is a client waiting on this instance, so it takes a slot like a socket. Past a limit, a
   * poll that would be held is answered 503.
   */
  readonly connectionLimits: ConnectionCounter
  /** Proxies whose `X-Forwarded-For` names the client, for the per-address limits. */
  readonly trustProxy: number
  /**
   * Requests (polls and sends) per client address: a client has no socket here to hold a bucket of its
   * own. Over it a request is answered 429 with `Retry-After`, before its body is read.
   */
  readonly requestLimit: AddressRateLimit
  /** Counts the frames of sends (in) and of answers (out). */
  readonly counters?: TrafficCounters
  readonly onError?: (code: ErrorCode) => void
}

/** A poll held open: a compact copy of what it brought (see held-snapshot.ts), and how to answer it. */
interface HeldPoll {
  readonly snapshot: HeldSnapshot
  readonly clocks: ReadonlyMap<number, AwarenessClock>
  finish (frames: readonly Uint8Array[]): void
}

/**
 * One room's held polls; its snapshot cached until the document changes (for polls as they arrive); and
 * what the document changed since held polls were last checked.
 */
interface RoomWatch {
  readonly room: Room
  readonly polls: Set<HeldPoll>
  snapshot: Y.Snapshot | null
  change: RoomChange
  users: number
  scheduled: boolean
  stop: () => void
}

const noChange = (): RoomChange => ({ advanced: new Map(), deleted: [] })

/**
 * Serves rooms over HTTP long-polling (see `long-poll-wire.ts` for the format). Nothing about a client
 * stays on the instance between requests: each poll says what the client has, each send carries frames,
 * so a client's requests may land on any instance. A poll with nothing to answer is held until the room
 * changes (a local edit, or one from another instance through the bus) or `holdMs` pass. Updates in a
 * send are answered only once committed, like a socket's are echoed only once committed.
 */
export class LongPollTransport {
  readonly #options: LongPollOptions
  readonly #held = new Set<HeldPoll>()
  readonly #watches = new Map<Room, RoomWatch>()
  #accepting = true

  constructor (options: LongPollOptions) {
    this.#options = options
  }

  /** Polls held open now. */
  get heldPolls (): number {
    return this.#held.size
  }

  readonly handle: RequestHandler = async (request, response) => {
    const path = pathOf(request)
    if (!path.startsWith(this.#options.prefix)) return false
    try {
      await this.#serve(request, response, path.slice(this.#options.prefix.length))
    } catch (error) {
      answerHttpError(request, response, error, { log: this.#options.log, onError: this.#options.onError, subject: 'long-poll request' })
    }
    return true
  }

  /** From now on every request is answered 503 and held polls are answered at once (empty). */
  stopAccepting (): void {
    this.#accepting = false
    for (const poll of [...this.#held]) poll.finish([])
  }

  close (): void {
    this.stopAccepting()
  }

  async #serve (request: IncomingMessage, response: ServerResponse, name: string): Promise<void> {
    if (name === '') throw new SyncError('BAD_ROOM', 'the URL names no room: use <prefix><room>')
    if (request.method !== 'POST') {
      response.setHeader('allow', 'POST')
      throw new SyncError('METHOD_NOT_ALLOWED', `${request.method ?? '?'} is not allowed here; long-poll endpoints take POST only`)
    }
    const op = new URL(request.url ?? '/', 'http://localhost').searchParams.get('op')
    if (op !== 'poll' && op !== 'send') throw new SyncError('BAD_MESSAGE', `?op= must be "poll" or "send", got ${JSON.stringify(op)}`)
    if (!this.#accepting) throw new SyncError('SHUTTING_DOWN')
    const address = clientAddress(request, this.#options.trustProxy)
    if (!this.#options.requestLimit.take(address)) throw new SyncError('RATE_LIMITED', `more long-poll requests from ${address} than its limit allows; retry later`)
    const declared = Number(request.headers['content-length'] ?? 0)
    if (declared > this.#options.maxMessageBytes) throw this.#tooBig(declared)
    const access = await this.#options.authorize(request, name)
    if (hasExpired(access.expiresAt)) throw tokenExpired()
    // A read-only client's send carries a step 1, awareness and an empty step 2: more can only be edits,
    // which it may not make, so it is refused before the body is read (or as soon as it is that long).
    const readOnlySend = op === 'send' && access.mode === 'read'
    const maxBytes = Math.min(this.#options.maxMessageBytes, readOnlySend ? MAX_READ_ONLY_SEND_BYTES : op === 'poll' ? MAX_POLL_BYTES : Infinity)
    let body: Uint8Array | null = await readBody(request, {
      maxBytes,
      budget: this.#options.inputBudget,
      timeoutMs: this.#options.inputTimeoutMs,
      tooBig: readOnlySend
        ? () => new SyncError('FORBIDDEN', `read-only access: a send over ${MAX_READ_ONLY_SEND_BYTES} bytes can only carry edits`)
        : (size) => this.#tooBig(size),
    })
    if (op === 'poll') {
      // A held poll keeps only its compact copy (see held-snapshot.ts): neither the body nor its decoding,
      // which is why both are let go of here rather than left in this function's scope while it waits.
      const poll: { request: PollRequest | null } = { request: null }
      try {
        poll.request = decodePollRequest(body)
      } catch (error) {
        throw error instanceof PollWireError ? new SyncError('BAD_MESSAGE', error.message) : error
      }
      body = null
      await this.#options.rooms.use(name, (room) => this.#poll(room, poll, address, response, access.expiresAt))
    } else {
      const plan = planSend(body, access)
      const counters = this.#options.counters
      if (counters !== undefined) { counters.messagesIn += plan.frames; counters.bytesIn += body.length }
      // The room's peer for this request: what the room sends it is the answer.
      const peer = new RequestPeer(access.mode === 'write', `poll ${address}`)
      await this.#options.rooms.use(name, (room) => room.receiveAll(peer, sendMessages(plan)))
      this.#reply(response, peer.frames)
    }
  }

  #tooBig (size: number): SyncError {
    return new SyncError('MESSAGE_TOO_BIG', `request body of ${size} bytes is over the limit of ${this.#options.maxMessageBytes}`)
  }

  async #poll (room: Room, poll: { request: PollRequest | null }, address: string, response: ServerResponse, expiresAt: number | undefined): Promise<void> {
    const watch = this.#watch(room)
    try {
      const frames = await this.#answerOrHold(watch, poll, address, response, expiresAt)
      // A poll held past its token's end gets nothing of what changed since (see session-end.ts).
      if (hasExpired(expiresAt)) throw tokenExpired()
      if (!response.destroyed) this.#reply(response, frames)
    } finally {
      this.#unwatch(watch)
    }
  }

  /**
   * What the client lacks now, or a hold until it lacks something (or `holdMs` pass, or its access ends
   * at `expiresAt`, which answers it empty). Takes `poll.request`.
   */
  #answerOrHold (
    watch: RoomWatch, poll: { request: PollRequest | null }, address: string, response: ServerResponse, expiresAt: number | undefined,
  ): readonly Uint8Array[] | Promise<readonly Uint8Array[]> {
    const request = poll.request!
    poll.request = null
    const { room } = watch
    const now = this.#answer(watch, request)
    if (now.length > 0) return now
    if (this.#held.size >= this.#options.maxHeldPolls) {
      throw new SyncError('OVERLOADED', `this instance holds ${this.#held.size} polls, its limit; retry later`)
    }
    const snapshot = new HeldSnapshot(request.snapshot, watch.snapshot!.sv)
    const clocks = heldClocks(request.clocks, room.awareness.meta)
    const slot = this.#options.connectionLimits.take(address, room.name)
    return new Promise<readonly Uint8Array[]>((resolve) => {
      const timer = setTimeout(() => held.finish([]), this.#options.holdMs)
      let cancelExpiry: (() => void) | null = null
      const held: HeldPoll = {
        snapshot,
        clocks,
        finish: (frames) => {
          if (!this.#held.delete(held)) return
          watch.polls.delete(held)
          clearTimeout(timer)
          cancelExpiry?.()
          slot.release()
          resolve(frames)
        },
      }
      this.#held.add(held)
      watch.polls.add(held)
      // A client that gave up (or died) frees its slot at once.
      response.once('close', () => held.finish([]))
      if (expiresAt !== undefined) cancelExpiry = atExpiry(expiresAt, () => held.finish([]))
    })
  }

  #reply (response: ServerResponse, frames: readonly Uint8Array[]): void {
    const body = encodeFrames(frames)
    const counters = this.#options.counters
    if (counters !== undefined) { counters.messagesOut += frames.length; counters.bytesOut += body.length }
    sendBytes(response, body)
  }

  /** What the client lacks: a sync update and/or an awareness update; empty when nothing. */
  #answer (watch: RoomWatch, poll: PollRequest): Uint8Array[] {
    const { room } = watch
    const frames: Uint8Array[] = []
    const snapshot = watch.snapshot ??= Y.snapshot(room.doc)
    if (clientLacks(snapshot, poll.snapshot)) {
      frames.push(protocol.encodeSyncUpdate(Y.encodeStateAsUpdate(room.doc, Y.encodeStateVector(poll.snapshot.sv))))
    }
    const ids = awarenessToSend(room.awareness, poll.clocks)
    if (ids.length > 0) frames.push(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(room.awareness, ids)))
    return frames
  }

  /** `#answer` for a held poll: only what changed since it was held can be news to it. */
  #answerHeld (room: Room, poll: HeldPoll, change: RoomChange): Uint8Array[] {
    const frames: Uint8Array[] = []
    if (poll.snapshot.lacks(change)) {
      frames.push(protocol.encodeSyncUpdate(Y.encodeStateAsUpdate(room.doc, Y.encodeStateVector(poll.snapshot.stateVector))))
    }
    const ids = awarenessToSend(room.awareness, poll.clocks)
    if (ids.length > 0) frames.push(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(room.awareness, ids)))
    return frames
  }

  #watch (room: Room): RoomWatch {
    let watch = this.#watches.get(room)
    if (watch === undefined) {
      const created: RoomWatch = { room, polls: new Set(), snapshot: null, change: noChange(), users: 0, scheduled: false, stop: () => {} }
      // What each transaction changed, while polls are held: a poll held later checked the document whole.
      const onTransaction = (transaction: Y.Transaction): void => {
        if (created.polls.size === 0) return
        const { advanced, deleted } = created.change
        for (const [client, clock] of transaction.afterState) {
          if (transaction.beforeState.get(client) !== clock) advanced.set(client, clock)
        }
        for (const [client, ranges] of transaction.deleteSet.clients) {
          for (const { clock, len } of ranges) deleted.push({ client, clock, len })
        }
      }
      room.doc.on('afterTransaction', onTransaction)
      const unobserve = room.observe((event) => {
        if (event === 'update') created.snapshot = null
        if (created.polls.size === 0 || created.scheduled) return
        // One check per turn of the event loop, however many changes arrived in it.
        created.scheduled = true
        setImmediate(() => {
          created.scheduled = false
          const change = created.change
          created.change = noChange()
          for (const poll of [...created.polls]) {
            const frames = this.#answerHeld(room, poll, change)
            if (frames.length > 0) poll.finish(frames)
          }
        })
      })
      created.stop = () => {
        unobserve()
        room.doc.off('afterTransaction', onTransaction)
      }
      this.#watches.set(room, watch = created)
    }
    watch.users++
    return watch
  }

  #unwatch (watch: RoomWatch): void {
    if (--watch.users > 0) return
    watch.stop()
    this.#watches.delete(watch.room)
  }
}

/**
 * The room's peer for one send: it collects the frames the room sends it, to answer with. The room closes
 * a peer only when its updates could not be stored, and `receiveAll` rejects then: the answer says so.
 */
class RequestPeer implements Peer {
  readonly frames: Uint8Array[] = []
  readonly canWrite: boolean
  readonly label: string

  constructor (canWrite: boolean, label: string) {
    this.canWrite = canWrite
    this.label = label
  }

  send (frame: Uint8Array): void {
    this.frames.push(frame)
  }

  close (): void {}
}

/**
 * The largest send a read-only client makes: a step 1, its awareness (at most 8 states of 64 KiB) and an
 * empty step 2, with room to spare.
 */
export const MAX_READ_ONLY_SEND_BYTES = 1024 * 1024

/**
 * The largest poll: its snapshot's delete set is decoded into Yjs objects, some twenty times its bytes.
 * An honest client's delete set is about the document's own, which takes some 3 bytes a deleted run.
 */
export const MAX_POLL_BYTES = 2 * 1024 * 1024

const sendBytes = (response: ServerResponse, body: Uint8Array): void => {
  response.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': body.length,
    'cache-control': 'no-store',
  })
  response.end(body)
}

