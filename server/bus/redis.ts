import { randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import type { Bus, BusHandler, BusMessage, BusSubscription } from './bus.js'
import { AwarenessOwners } from './awareness-owners.js'

export interface RedisBusOptions {
  /** `redis://` URL. */
  readonly url: string
  /** Prepended to every stream key, so several deployments (or test runs) can share one Redis. Default `yjs-relay:`. */
  readonly prefix?: string
  /** Each room's stream keeps about this many entries (`XADD MAXLEN ~`). Default 1000. */
  readonly maxLen?: number
  /** Longest a blocking read waits before it is issued again. Default 5000 ms. */
  readonly blockMs?: number
  /**
   * Each instance refreshes a liveness key this often (it expires after three periods); the awareness
   * states announced by an instance whose key expired are removed. Default 1000 ms.
   */
  readonly heartbeatMs?: number
  readonly log: Logger
}

/** Entry field values: who published, what kind, the bytes. `gap` tells readers to reload from storage. */
const KIND = { update: 'u', awareness: 'a', gap: 'g' } as const

interface Stream {
  readonly key: string
  readonly handlers: Set<BusHandler>
  readonly awarenessOwners: AwarenessOwners
  /** The id of the last entry delivered (or skipped); reading resumes after it. */
  lastId: string
}

type XReadReply = Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null

/** Compares two stream ids (`ms-seq`). */
export const compareIds = (a: string, b: string): number => {
  const [am = '0', as = '0'] = a.split('-')
  const [bm = '0', bs = '0'] = b.split('-')
  const ms = BigInt(am) - BigInt(bm)
  if (ms !== 0n) return ms < 0n ? -1 : 1
  const seq = BigInt(as) - BigInt(bs)
  return seq === 0n ? 0 : seq < 0n ? -1 : 1
}

/**
 * The bus over Redis Streams: one stream per room, each entry one update or awareness change tagged with
 * the publishing instance's id (so an instance skips its own entries).
 *
 * One connection publishes; another runs a single blocking XREAD over the streams of every room this
 * instance has loaded, each from the last id it saw. Subscribing unblocks that read so the new stream
 * joins at once. After the reading connection drops (a Redis restart, a network blip), it resumes from
 * the same ids; a stream that no longer holds the entry after that id (trimmed by MAXLEN, or lost with
 * a Redis restart) cannot be replayed, so its handlers get `gap()` and reload the room from storage.
 * A publish that fails is remembered, and once Redis is back a `gap` entry tells the other instances
 * to reload that room: everything published is committed first, so storage holds what they missed.
 */
export class RedisBus implements Bus {
  readonly instanceId = randomUUID()
  readonly #log: Logger
  readonly #prefix: string
  readonly #maxLen: number
  readonly #blockMs: number
  readonly #heartbeatMs: number
  readonly #heartbeat: NodeJS.Timeout
  /** Instances whose liveness key was missing at the last check: gone if it is still missing at the next. */
  #missing = new Set<string>()
  /** No liveness verdicts before this time: after a Redis restart every key is gone until refreshed. */
  #quietUntil = 0
  readonly #writer: Redis
  readonly #reader: Redis
  readonly #streams = new Map<string, Stream>()
  /** Rooms whose publish failed: announce a gap for each once Redis answers again. */
  readonly #unpublished = new Set<string>()
  #readerId: number | null = null
  /** Bumped whenever the set of streams changes; a read of an older set is interrupted. */
  #generation = 0
  #readingGeneration = -1
  /** The reading connection dropped since the last gap check. */
  #suspect = false
  #wake: (() => void) | null = null
  #closed = false
  readonly #loop: Promise<void>

  constructor (options: RedisBusOptions) {
    this.#log = options.log
    this.#prefix = options.prefix ?? 'yjs-relay:'
    this.#maxLen = options.maxLen ?? 1000
    this.#blockMs = options.blockMs ?? 5000
    this.#heartbeatMs = options.heartbeatMs ?? 1000
    if (!Number.isInteger(this.#heartbeatMs) || this.#heartbeatMs < 10) throw new RangeError(`heartbeatMs must be an integer >= 10, got ${this.#heartbeatMs}`)
    if (!Number.isInteger(this.#maxLen) || this.#maxLen < 10) throw new RangeError(`maxLen must be an integer >= 10, got ${this.#maxLen}`)
    if (!Number.isInteger(this.#blockMs) || this.#blockMs < 10) throw new RangeError(`blockMs must be an integer >= 10, got ${this.#blockMs}`)
    const common: RedisOptions = {
      // Reconnect quickly: while Redis is away, instances only catch up through storage reloads.
      retryStrategy: (times) => Math.min(times * 100, 1000),
      lazyConnect: false,
    }
    // Publishing never queues: a message that cannot go now is replaced by a gap entry later.
    this.#writer = new Redis(options.url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 2000 })
    // Commands on the reader fail when its connection drops, so the read loop notices every outage.
    this.#reader = new Redis(options.url, { ...common, maxRetriesPerRequest: 0 })
    for (const [name, connection] of [['publisher', this.#writer], ['reader', this.#reader]] as const) {
      connection.on('error', (error: Error) => this.#log.warn({ err: error, connection: name }, 'redis bus: connection error'))
    }
    this.#reader.on('close', () => { this.#suspect = true; this.#readerId = null })
    this.#writer.on('ready', () => {
      this.#quietUntil = Date.now() + 3 * this.#heartbeatMs
      this.#missing.clear()
      void this.#beat()
      void this.#announceGaps()
    })
    this.#heartbeat = setInterval(() => { void this.#beat().then(() => this.#checkInstances()) }, this.#heartbeatMs)
    this.#heartbeat.unref()
    this.#loop = this.#run()
  }

  async subscribe (room: string, handler: BusHandler): Promise<BusSubscription> {
    if (this.#closed) throw new Error('the bus is closed')
    const key = this.#streamKey(room)
    let stream = this.#streams.get(key)
    if (stream === undefined) {
      stream = { key, handlers: new Set(), awarenessOwners: new AwarenessOwners(), lastId: await this.#tail(key) }
      // Another subscribe for the same room may have finished while we waited.
      const existing = this.#streams.get(key)
      if (existing !== undefined) stream = existing
      else this.#streams.set(key, stream)
    }
    stream.handlers.add(handler)
    this.#changed()
    const subscribed = stream
    return {
      close: async () => {
        subscribed.handlers.delete(handler)
        if (subscribed.handlers.size === 0 && this.#streams.get(key) === subscribed) {
          this.#streams.delete(key)
          this.#changed()
        }
      },
    }
  }

  /** The id of the newest entry of `key` ('0-0' when none): a new subscriber reads what comes after it. */
  async #tail (key: string): Promise<string> {
    try {
      await this.#writerReady()
      const last = await this.#writer.xrevrange(key, '+', '-', 'COUNT', 1)
      return last[0]?.[0] ?? '0-0'
    } catch (error) {
      // Redis is away: read the whole (capped) stream once it is back; replaying is harmless.
      this.#log.warn({ err: error, key }, 'redis bus: cannot read the stream tail; will replay it')
      this.#suspect = true
      return '0-0'
    }
  }

  async publish (room: string, message: BusMessage): Promise<void> {
    try {
      await this.#add(room, KIND[message.kind], Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength))
      if (this.#unpublished.size > 0) void this.#announceGaps()
    } catch (error) {
      if (message.kind === 'update') this.#unpublished.add(room)
      throw error
    }
  }

  async #add (room: string, kind: string, data: Buffer): Promise<void> {
    await this.#writerReady()
    await this.#writer.xadd(this.#streamKey(room), 'MAXLEN', '~', this.#maxLen, '*', 'i', this.instanceId, 'k', kind, 'd', data)
  }

  async #announceGaps (): Promise<void> {
    for (const room of [...this.#unpublished]) {
      try {
        await this.#add(room, KIND.gap, Buffer.alloc(0))
        this.#unpublished.delete(room)
      } catch (error) {
        this.#log.warn({ err: error, room }, 'redis bus: cannot announce a gap yet')
        return
      }
    }
  }

  #streamKey (room: string): string {
    return `${this.#prefix}room:${room}`
  }

  #aliveKey (instance: string): string {
    return `${this.#prefix}instance:${instance}`
  }

  async #beat (): Promise<void> {
    if (this.#closed || this.#writer.status !== 'ready') return
    await this.#writer.set(this.#aliveKey(this.instanceId), '1', 'PX', 3 * this.#heartbeatMs).catch(() => {})
  }

  /** Removes, in every room, the awareness states of instances whose liveness key expired. */
  async #checkInstances (): Promise<void> {
    if (this.#closed || this.#writer.status !== 'ready' || Date.now() < this.#quietUntil) return
    const streams = [...this.#streams.values()]
    const instances = [...new Set(streams.flatMap((stream) => [...stream.awarenessOwners.instances()]))]
    if (instances.length === 0) return
    let alive: number[]
    try {
      alive = await Promise.all(instances.map((instance) => this.#writer.exists(this.#aliveKey(instance))))
    } catch {
      return
    }
    const missing = new Set(instances.filter((_, i) => alive[i] === 0))
    for (const instance of missing) {
      if (!this.#missing.has(instance)) continue
      this.#log.info({ instance }, 'redis bus: an instance stopped without saying goodbye; removing its awareness states')
      for (const stream of streams) {
        const removal = stream.awarenessOwners.removeInstance(instance)
        if (removal !== null) this.#dispatch(stream, { kind: 'awareness', data: removal })
      }
      missing.delete(instance)
    }
    this.#missing = missing
  }

  #changed (): void {
    this.#generation++
    const wake = this.#wake
    this.#wake = null
    wake?.()
    void this.#interruptRead()
  }

  /** Ends the current blocking read (if it does not cover every stream) so that the next one does. */
  async #interruptRead (): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      if (this.#closed || this.#readingGeneration === this.#generation || this.#readingGeneration < 0) return
      const id = this.#readerId
      if (id === null) return
      try {
        // 0 means the read has not reached Redis yet (or just ended): try again shortly.
        if (await this.#writer.client('UNBLOCK', id) === 1) return
      } catch {
        return
      }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  async #run (): Promise<void> {
    while (!this.#closed) {
      if (this.#streams.size === 0) {
        await new Promise<void>((resolve) => { this.#wake = resolve })
        continue
      }
      try {
        if (this.#readerId === null) this.#readerId = await this.#reader.client('ID')
        if (this.#suspect) {
          this.#suspect = false
          await this.#checkGaps()
        }
        await this.#readOnce()
      } catch (error) {
        if (this.#closed) return
        this.#log.debug({ err: error }, 'redis bus: read failed; resuming when Redis is back')
        this.#suspect = true
        this.#readingGeneration = -1
        await this.#readerReady()
      }
    }
  }

  async #readOnce (): Promise<void> {
    const streams = [...this.#streams.values()]
    const count = Math.min(this.#maxLen, 1000)
    this.#readingGeneration = this.#generation
    // A connection that died silently (no RST) would leave the read blocked forever: reconnect instead.
    const watchdog = setTimeout(() => {
      this.#log.warn('redis bus: a blocking read did not return in time; reconnecting')
      this.#reader.disconnect(true)
    }, this.#blockMs + 10_000)
    let reply: XReadReply
    try {
      reply = await this.#reader.callBuffer('XREAD', 'COUNT', count, 'BLOCK', this.#blockMs, 'STREAMS',
        ...streams.map((s) => s.key), ...streams.map((s) => s.lastId)) as XReadReply
    } finally {
      clearTimeout(watchdog)
      this.#readingGeneration = -1
    }
    if (reply === null) return
    for (const [rawKey, entries] of reply) {
      const stream = this.#streams.get(rawKey.toString('utf8'))
      if (stream === undefined || entries.length === 0) continue
      // A full batch means we were far behind: the entries right after lastId may have been trimmed.
      if (entries.length >= count && await this.#trimmedAfter(stream)) this.#gap(stream)
      for (const [rawId, fields] of entries) {
        stream.lastId = rawId.toString('latin1')
        this.#deliver(stream, fields, Number(stream.lastId.slice(0, stream.lastId.indexOf('-'))))
      }
    }
  }

  /** `sentAt`: the stream id's milliseconds, Redis's clock when the entry was added. */
  #deliver (stream: Stream, fields: Buffer[], sentAt: number): void {
    let instance = ''
    let kind = ''
    let data: Buffer | undefined
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i]!.toString('latin1')
      if (name === 'i') instance = fields[i + 1]!.toString('latin1')
      else if (name === 'k') kind = fields[i + 1]!.toString('latin1')
      else if (name === 'd') data = fields[i + 1]!
    }
    if (instance === this.instanceId) return
    if (kind === KIND.gap) return this.#gap(stream)
    if (data === undefined || (kind !== KIND.update && kind !== KIND.awareness)) {
      this.#log.warn({ key: stream.key }, 'redis bus: skipped a malformed stream entry')
      return
    }
    const message: BusMessage = { kind: kind === KIND.update ? 'update' : 'awareness', data: new Uint8Array(data), sentAt }
    if (message.kind === 'awareness') stream.awarenessOwners.record(instance, message.data)
    this.#dispatch(stream, message)
  }

  #dispatch (stream: Stream, message: BusMessage): void {
    for (const handler of stream.handlers) {
      try {
        handler.message(message)
      } catch (error) {
        this.#log.error({ err: error, key: stream.key }, 'redis bus: a handler threw')
      }
    }
  }

  #gap (stream: Stream): void {
    this.#log.info({ key: stream.key }, 'redis bus: messages missed; the room reloads from storage')
    for (const handler of stream.handlers) {
      try {
        handler.gap()
      } catch (error) {
        this.#log.error({ err: error, key: stream.key }, 'redis bus: a gap handler threw')
      }
    }
  }

  /** Whether entries after `stream.lastId` may be gone: the stream's oldest entry is newer than it. */
  async #trimmedAfter (stream: Stream): Promise<boolean> {
    const first = await this.#reader.xrange(stream.key, '-', '+', 'COUNT', 1)
    const id = first[0]?.[0]
    return id === undefined || compareIds(id, stream.lastId) > 0
  }

  /**
   * After the reading connection dropped: a stream that lost entries (trimmed, or Redis restarted without
   * persistence) cannot be replayed from where we were, so its rooms reload from storage.
   */
  async #checkGaps (): Promise<void> {
    for (const stream of [...this.#streams.values()]) {
      const last = await this.#reader.xrevrange(stream.key, '+', '-', 'COUNT', 1)
      const newest = last[0]?.[0]
      if (newest === undefined || compareIds(newest, stream.lastId) < 0) {
        // Emptied or recreated: ids start over, so read it from the beginning.
        stream.lastId = '0-0'
        this.#gap(stream)
      } else if (await this.#trimmedAfter(stream)) {
        this.#gap(stream)
      }
    }
  }

  /**
   * Gives a connection that is (re)connecting a moment to get there, so that a bus used right after it
   * was created, or a blip of a few hundred ms, does not fail; a longer outage fails fast.
   */
  async #writerReady (timeoutMs = 1000): Promise<void> {
    if (this.#writer.status === 'ready' || this.#closed) return
    await new Promise<void>((resolve) => {
      const ready = (): void => { clearTimeout(timer); resolve() }
      const timer = setTimeout(() => { this.#writer.off('ready', ready); resolve() }, timeoutMs)
      this.#writer.once('ready', ready)
    })
  }

  async #readerReady (): Promise<void> {
    while (!this.#closed && this.#reader.status !== 'ready') {
      await new Promise<void>((resolve) => {
        const ready = (): void => { clearTimeout(timer); resolve() }
        const timer = setTimeout(() => { this.#reader.off('ready', ready); resolve() }, 250)
        this.#reader.once('ready', ready)
      })
    }
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#heartbeat)
    this.#wake?.()
    this.#reader.disconnect()
    await this.#loop.catch(() => {})
    // A clean stop has closed its sockets and published their awareness removals already.
    await this.#writer.del(this.#aliveKey(this.instanceId)).catch(() => {})
    await this.#writer.quit().catch(() => { this.#writer.disconnect() })
  }
}
