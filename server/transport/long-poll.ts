import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { clientAddress, type ConnectionCounter } from '../connection-limits.js'
import { asRemovals, encodeAwarenessEntries } from '../awareness-codec.js'
import { SyncError, type ErrorCode } from '../errors.js'
import type { InputBudget } from '../input-budget.js'
import { urlForLog } from '../log.js'
import type { TrafficCounters } from '../metrics.js'
import type { AddressRateLimit } from '../rate-limit.js'
import * as protocol from '../protocol.js'
import type { Room } from '../room.js'
import { checkOrigins, validateUpdate } from '../update-admission.js'
import type { Rooms } from '../rooms.js'
import { ClientGone, connectionAfter, readBody } from './body-reader.js'
import { pathOf, type RequestHandler } from './responses.js'
import {
  awarenessToSend, clientLacks, decodePollRequest, encodeFrames, PollWireError,
  type AwarenessClock, type PollRequest,
} from './long-poll-wire.js'
import { heldClocks, HeldSnapshot, type RoomChange } from './held-snapshot.js'
import { planSend, type SendPlan } from './long-poll-send.js'
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
      this.#fail(request, response, error)
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
    if (request.method !== 'POST') throw new SyncError('METHOD_NOT_ALLOWED', `${request.method ?? '?'} is not allowed here; long-poll endpoints take POST only`)
    const op = new URL(request.url ?? '/', 'http://localhost').searchParams.get('op')
    if (op !== 'poll' && op !== 'send') throw new SyncError('BAD_MESSAGE', `?op= must be "poll" or "send", got ${JSON.stringify(op)}`)
    if (!this.#accepting) throw new SyncError('SHUTTING_DOWN')
    const address = clientAddress(request, this.#options.trustProxy)
    if (!this.#options.requestLimit.take(address)) throw new SyncError('RATE_LIMITED', `more long-poll requests from ${address} than its limit allows; retry later`)
    const declared = Number(request.headers['content-length'] ?? 0)
    if (declared > this.#options.maxMessageBytes) throw this.#tooBig(declared)
    const access = await this.#authorize(request, name)
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
      await this.#withRoom(name, (room) => this.#poll(room, poll, address, response))
    } else {
      const plan = planSend(body, access)
      const counters = this.#options.counters
      if (counters !== undefined) { counters.messagesIn += plan.frames; counters.bytesIn += body.length }
      await this.#withRoom(name, (room) => this.#send(room, plan, access, response))
    }
  }

  /** The one place a request is authorized: the seam auth and rate limits extend for both transports. */
  async #authorize (request: IncomingMessage, name: string): Promise<Access> {
    try {
      return await this.#options.authorize(request, name)
    } catch (error) {
      if (error instanceof SyncError) throw error
      this.#options.log.error({ err: error, room: name }, 'authorize threw')
      throw new SyncError('INTERNAL')
    }
  }

  #tooBig (size: number): SyncError {
    return new SyncError('MESSAGE_TOO_BIG', `request body of ${size} bytes is over the limit of ${this.#options.maxMessageBytes}`)
  }

  /** Holds the room loaded for the duration of `use`. */
  async #withRoom (name: string, use: (room: Room) => Promise<void>): Promise<void> {
    const { rooms } = this.#options
    const room = rooms.acquire(name)
    try {
      try {
        await room.loaded
      } catch {
        throw new SyncError('STORAGE_UNAVAILABLE', 'the room could not be loaded')
      }
      await use(room)
    } finally {
      rooms.release(room)
    }
  }

  async #send (room: Room, plan: SendPlan, access: Access, response: ServerResponse): Promise<void> {
    const replies: Uint8Array[] = []
    // Checked against the room before any is queued, so that a body with one forged update changes nothing.
    // Decoded once more, one at a time, rather than held decoded from the parse.
    for (const update of plan.updates) checkOrigins(room.doc, validateUpdate(update))
    // One update for all of the body's awareness: the limits count per request, and peers get one frame.
    const raised = plan.awareness.size > 0 ? room.applyAwareness(encodeAwarenessEntries([...plan.awareness.values()])) : new Set<number>()
    const commits = access.mode === 'write' ? plan.updates.map((update) => room.submitAndWait(update)) : []
    let stored: boolean[]
    try {
      stored = await Promise.all(commits)
    } catch (error) {
      throw error instanceof SyncError ? error : new SyncError('STORAGE_UNAVAILABLE', (error as Error).message)
    }
    // An update that depends on content the room lacks was refused: ask the client for that content.
    if (stored.includes(false)) replies.push(protocol.encodeSyncStep1(Y.encodeStateVector(room.doc)))
    // Answered after the commits, so that a step 2 in the reply holds the client's own updates too.
    if (plan.stateVector !== null) {
      replies.push(protocol.encodeSyncStep2(Y.encodeStateAsUpdate(room.doc, Y.encodeStateVector(plan.stateVector))))
      // The socket handshake's server step 1: the client answers it with what the room lacks.
      replies.push(protocol.encodeSyncStep1(Y.encodeStateVector(room.doc)))
    }
    if (plan.readOnlyStep2) replies.push(protocol.encodePermissionDenied('read-only access'))
    // The echo a socket gets of its own awareness: it tells the client's provider, which closes a
    // connection that received nothing for a while, that this one works; with every state, if the body
    // asked for them. A state whose clock the room raised is echoed as a removal, as to a socket (see
    // RoomAwareness).
    const { meta, states } = room.awareness
    const ids = new Set([...plan.awareness.keys()].filter((id) => meta.has(id)))
    if (plan.queryAwareness) for (const id of states.keys()) ids.add(id)
    if (ids.size > 0) replies.push(protocol.encodeAwareness(asRemovals(awarenessProtocol.encodeAwarenessUpdate(room.awareness, [...ids]), raised)))
    this.#reply(response, replies)
  }

  async #poll (room: Room, poll: { request: PollRequest | null }, address: string, response: ServerResponse): Promise<void> {
    const watch = this.#watch(room)
    try {
      const frames = await this.#answerOrHold(watch, poll, address, response)
      if (!response.destroyed) this.#reply(response, frames)
    } finally {
      this.#unwatch(watch)
    }
  }

  /** What the client lacks now, or a hold until it lacks something (or `holdMs` pass). Takes `poll.request`. */
  #answerOrHold (watch: RoomWatch, poll: { request: PollRequest | null }, address: string, response: ServerResponse): readonly Uint8Array[] | Promise<readonly Uint8Array[]> {
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
      const held: HeldPoll = {
        snapshot,
        clocks,
        finish: (frames) => {
          if (!this.#held.delete(held)) return
          watch.polls.delete(held)
          clearTimeout(timer)
          slot.release()
          resolve(frames)
        },
      }
      this.#held.add(held)
      watch.polls.add(held)
      // A client that gave up (or died) frees its slot at once.
      response.once('close', () => held.finish([]))
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

  #fail (request: IncomingMessage, response: ServerResponse, error: unknown): void {
    const url = urlForLog(request.url)
    // Nobody is left to answer, and a connection that drops is no fault of the server's.
    if (error instanceof ClientGone) return this.#options.log.debug({ url }, error.message)
    const failure = error instanceof SyncError ? error : new SyncError('INTERNAL')
    const log = { url, code: failure.code, detail: failure.message }
    this.#options.onError?.(failure.code)
    if (failure.code === 'INTERNAL') this.#options.log.error({ ...log, err: error }, 'long-poll request failed')
    else if (failure.status === 503) this.#options.log.info(log, 'long-poll request refused for now')
    else this.#options.log.warn(log, 'long-poll request refused')
    if (response.headersSent || response.destroyed) return
    // The close code lets a poll channel close exactly as a socket would have, without a table of its own.
    const headers: Record<string, string> = {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      'x-error-code': failure.code,
      'x-close-code': String(failure.closeCode),
    }
    if (failure.status === 503 || failure.status === 429) headers['retry-after'] = failure.code === 'OVERLOADED' ? '2' : '1'
    // The rest of a refused body is never read: close the connection rather than drain it.
    Object.assign(headers, connectionAfter(request))
    if (failure.code === 'METHOD_NOT_ALLOWED') headers.allow = 'POST'
    response.writeHead(failure.status, headers)
    response.end(`${failure.code}: ${failure.message}\n`)
  }
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

