import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { clientAddress, type ConnectionCounter } from '../connection-limits.js'
import { asRemovals, checkStatesAreJson, readAwarenessEntries } from '../awareness-codec.js'
import { SyncError, type ErrorCode } from '../errors.js'
import type { InputBudget } from '../input-budget.js'
import { urlForLog } from '../log.js'
import type { TrafficCounters } from '../metrics.js'
import type { AddressRateLimit } from '../rate-limit.js'
import * as protocol from '../protocol.js'
import type { Room } from '../room.js'
import { checkOrigins, isEmptyUpdate, validateUpdate, type DecodedUpdate } from '../update-admission.js'
import type { Rooms } from '../rooms.js'
import { ClientGone, connectionAfter, readBody } from './body-reader.js'
import { pathOf, type RequestHandler } from './responses.js'
import {
  awarenessToSend, clientLacks, decodeFrames, decodePollRequest, encodeFrames, PollWireError,
  type AwarenessClock, type PollRequest,
} from './long-poll-wire.js'
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

interface HeldPoll {
  readonly request: PollRequest
  finish (frames: readonly Uint8Array[]): void
}

/** One room's held polls, and its snapshot cached until the document changes. */
interface RoomWatch {
  readonly room: Room
  readonly polls: Set<HeldPoll>
  snapshot: Y.Snapshot | null
  users: number
  scheduled: boolean
  stop: () => void
}

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
    const maxBytes = readOnlySend ? Math.min(this.#options.maxMessageBytes, MAX_READ_ONLY_SEND_BYTES) : this.#options.maxMessageBytes
    const body = await readBody(request, {
      maxBytes,
      budget: this.#options.inputBudget,
      timeoutMs: this.#options.inputTimeoutMs,
      tooBig: readOnlySend
        ? () => new SyncError('FORBIDDEN', `read-only access: a send over ${MAX_READ_ONLY_SEND_BYTES} bytes can only carry edits`)
        : (size) => this.#tooBig(size),
    })
    if (op === 'poll') {
      let poll: PollRequest
      try {
        poll = decodePollRequest(body)
      } catch (error) {
        throw badInput(error)
      }
      await this.#withRoom(name, (room) => this.#poll(room, poll, address, response))
    } else {
      const messages = parseSend(body, access)
      const counters = this.#options.counters
      if (counters !== undefined) { counters.messagesIn += messages.length; counters.bytesIn += body.length }
      await this.#withRoom(name, (room) => this.#send(room, messages, access, response))
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

  async #send (room: Room, messages: readonly SendMessage[], access: Access, response: ServerResponse): Promise<void> {
    const replies: Uint8Array[] = []
    const commits: Array<Promise<boolean>> = []
    const raised = new Set<number>()
    // Checked against the room before any is queued, so that a body with one forged update changes nothing.
    for (const message of messages) {
      if ('decoded' in message && access.mode === 'write') checkOrigins(room.doc, message.decoded)
    }
    for (const message of messages) {
      if (message.type === 'awareness') for (const id of room.applyAwareness(message.update)) raised.add(id)
      else if (message.type === 'sync-step2' || message.type === 'sync-update') {
        if (access.mode === 'write') commits.push(room.submitAndWait(message.update))
      }
    }
    let stored: boolean[]
    try {
      stored = await Promise.all(commits)
    } catch (error) {
      throw error instanceof SyncError ? error : new SyncError('STORAGE_UNAVAILABLE', (error as Error).message)
    }
    // An update that depends on content the room lacks was refused: ask the client for that content.
    if (stored.includes(false)) replies.push(protocol.encodeSyncStep1(Y.encodeStateVector(room.doc)))
    // Answered after the commits, so that a step 2 in the reply holds the client's own updates too.
    for (const message of messages) {
      switch (message.type) {
        case 'sync-step1':
          replies.push(protocol.encodeSyncStep2(Y.encodeStateAsUpdate(room.doc, message.stateVector)))
          // The socket handshake's server step 1: the client answers it with what the room lacks.
          replies.push(protocol.encodeSyncStep1(Y.encodeStateVector(room.doc)))
          break
        case 'sync-step2':
          if (access.mode === 'read' && !isEmptyUpdate(message.update)) replies.push(protocol.encodePermissionDenied('read-only access'))
          break
        case 'awareness': {
          // The echo a socket gets of its own awareness: it tells the client's provider, which closes a
          // connection that received nothing for a while, that this one works. A state whose clock the room
          // raised is echoed as a removal, as to a socket (see RoomAwareness).
          const ids = ('clients' in message ? message.clients : []).filter((id) => room.awareness.meta.has(id))
          if (ids.length > 0) replies.push(protocol.encodeAwareness(asRemovals(awarenessProtocol.encodeAwarenessUpdate(room.awareness, ids), raised)))
          break
        }
        case 'query-awareness':
          replies.push(protocol.encodeAwareness(
            awarenessProtocol.encodeAwarenessUpdate(room.awareness, [...room.awareness.states.keys()])))
          break
        default:
          break
      }
    }
    this.#reply(response, replies)
  }

  async #poll (room: Room, poll: PollRequest, address: string, response: ServerResponse): Promise<void> {
    const watch = this.#watch(room)
    try {
      const now = this.#answer(watch, poll)
      if (now.length > 0) return this.#reply(response, now)
      if (this.#held.size >= this.#options.maxHeldPolls) {
        throw new SyncError('OVERLOADED', `this instance holds ${this.#held.size} polls, its limit; retry later`)
      }
      const slot = this.#options.connectionLimits.admit(address, room.name)
      const frames = await new Promise<readonly Uint8Array[]>((resolve) => {
        const timer = setTimeout(() => held.finish([]), this.#options.holdMs)
        const held: HeldPoll = {
          request: heldRequest(poll, room.awareness.meta),
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
      if (!response.destroyed) this.#reply(response, frames)
    } finally {
      this.#unwatch(watch)
    }
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

  #watch (room: Room): RoomWatch {
    let watch = this.#watches.get(room)
    if (watch === undefined) {
      const created: RoomWatch = { room, polls: new Set(), snapshot: null, users: 0, scheduled: false, stop: () => {} }
      created.stop = room.observe((event) => {
        if (event === 'update') created.snapshot = null
        if (created.polls.size === 0 || created.scheduled) return
        // One check per turn of the event loop, however many changes arrived in it.
        created.scheduled = true
        setImmediate(() => {
          created.scheduled = false
          for (const poll of [...created.polls]) {
            const frames = this.#answer(created, poll.request)
            if (frames.length > 0) poll.finish(frames)
          }
        })
      })
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

/** A message of a send; awareness comes with the client ids it names, for the echo. */
type SendMessage =
  | Exclude<protocol.Message, { type: 'awareness' | 'sync-step2' | 'sync-update' }>
  | (Extract<protocol.Message, { type: 'awareness' }> & { readonly clients: readonly number[] })
  | (Extract<protocol.Message, { type: 'sync-step2' | 'sync-update' }> & { readonly decoded: DecodedUpdate })


const badInput = (error: unknown): SyncError => {
  if (error instanceof SyncError) return error
  if (error instanceof PollWireError || error instanceof protocol.ProtocolError) return new SyncError('BAD_MESSAGE', error.message)
  return new SyncError('INTERNAL')
}

/**
 * Decodes and checks every frame of a send before any takes effect, so that a body with one bad frame
 * changes nothing. Read-only clients may send awareness and the handshake, but no edit (403).
 */
const parseSend = (body: Uint8Array, access: Access): SendMessage[] => {
  const messages: SendMessage[] = []
  try {
    for (const frame of decodeFrames(body)) {
      const message = protocol.decodeMessage(frame)
      switch (message.type) {
        case 'sync-step1':
          try {
            Y.decodeStateVector(message.stateVector)
          } catch {
            throw new PollWireError('bad state vector: sync step 1 cannot be decoded')
          }
          break
        case 'sync-step2':
        case 'sync-update': {
          const decoded = validateUpdate(message.update)
          if (access.mode === 'read' && message.type === 'sync-update' && !isEmptyUpdate(message.update)) {
            throw new SyncError('FORBIDDEN', 'read-only access: updates are not accepted')
          }
          messages.push({ ...message, decoded })
          continue
        }
        case 'awareness': {
          const entries = readAwarenessEntries(message.update)
          checkStatesAreJson(entries)
          messages.push({ ...message, clients: entries.map(([client]) => client) })
          continue
        }
        default:
          break
      }
      messages.push(message)
    }
  } catch (error) {
    throw badInput(error)
  }
  return messages
}

const sendBytes = (response: ServerResponse, body: Uint8Array): void => {
  response.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': body.length,
    'cache-control': 'no-store',
  })
  response.end(body)
}

/**
 * The part of a poll kept while it is held: its entries for awareness clients the room has not met
 * matter only if the room meets them during the hold, and then cost one answer too many at most.
 */
const heldRequest = (poll: PollRequest, met: ReadonlyMap<number, unknown>): PollRequest => {
  if (poll.clocks.size <= met.size && [...poll.clocks.keys()].every((id) => met.has(id))) return poll
  const clocks = new Map<number, AwarenessClock>()
  for (const [id, clock] of poll.clocks) if (met.has(id)) clocks.set(id, clock)
  return { snapshot: poll.snapshot, clocks }
}
