/**
 * The read loop of the Redis bus: one blocking XREAD over the streams of every room this instance has
 * loaded, each from the last id it saw. A change to the set of streams unblocks the read so that a new
 * stream joins at once. After the reading connection drops (a Redis restart, a network blip), it resumes
 * from the same ids; a stream that no longer holds the entry after that id (trimmed by MAXLEN, or lost
 * with a Redis restart) cannot be replayed, so its handlers get `gap()` and reload the room from storage.
 */
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { BusMessage } from './bus.js'
import { compareIds, dispatch, KIND, readEntry, reportGap, type Stream } from './redis-stream.js'

export interface RedisReaderOptions {
  /** The connection the blocking reads run on; its commands fail when it drops. */
  readonly reader: Redis
  /** Another connection, to unblock a read that no longer covers every stream. */
  readonly writer: Redis
  /** The streams to read, keyed by stream key; RedisBus adds and removes them and calls `changed`. */
  readonly streams: ReadonlyMap<string, Stream>
  readonly instanceId: string
  /** Entries read at most per stream and read. */
  readonly maxLen: number
  /** Longest a blocking read waits before it is issued again. */
  readonly blockMs: number
  readonly log: Logger
}

type XReadReply = Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null

export class RedisReader {
  readonly #options: RedisReaderOptions
  #readerId: number | null = null
  /** Bumped whenever the set of streams changes; a read of an older set is interrupted. */
  #generation = 0
  #readingGeneration = -1
  /** The reading connection dropped since the last gap check. */
  #suspect = false
  #wake: (() => void) | null = null
  #closed = false
  readonly #loop: Promise<void>

  constructor (options: RedisReaderOptions) {
    this.#options = options
    options.reader.on('close', () => { this.#suspect = true; this.#readerId = null })
    this.#loop = this.#run()
  }

  /** Entries may have been missed (Redis was away): check every stream for gaps before the next read. */
  suspect (): void {
    this.#suspect = true
  }

  /** The set of streams changed: the next read covers the new set. */
  changed (): void {
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
        if (await this.#options.writer.client('UNBLOCK', id) === 1) return
      } catch {
        return
      }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  async #run (): Promise<void> {
    const { streams, reader, log } = this.#options
    while (!this.#closed) {
      if (streams.size === 0) {
        await new Promise<void>((resolve) => { this.#wake = resolve })
        continue
      }
      try {
        if (this.#readerId === null) this.#readerId = await reader.client('ID')
        if (this.#suspect) {
          this.#suspect = false
          await this.#checkGaps()
        }
        await this.#readOnce()
      } catch (error) {
        if (this.#closed) return
        log.debug({ err: error }, 'redis bus: read failed; resuming when Redis is back')
        this.#suspect = true
        this.#readingGeneration = -1
        await this.#readerReady()
      }
    }
  }

  async #readOnce (): Promise<void> {
    const { reader, log, blockMs } = this.#options
    const streams = [...this.#options.streams.values()]
    const count = Math.min(this.#options.maxLen, 1000)
    this.#readingGeneration = this.#generation
    // A connection that died silently (no RST) would leave the read blocked forever: reconnect instead.
    const watchdog = setTimeout(() => {
      log.warn('redis bus: a blocking read did not return in time; reconnecting')
      reader.disconnect(true)
    }, blockMs + 10_000)
    let reply: XReadReply
    try {
      reply = await reader.callBuffer('XREAD', 'COUNT', count, 'BLOCK', blockMs, 'STREAMS',
        ...streams.map((s) => s.key), ...streams.map((s) => s.lastId)) as XReadReply
    } finally {
      clearTimeout(watchdog)
      this.#readingGeneration = -1
    }
    if (reply === null) return
    for (const [rawKey, entries] of reply) {
      const stream = this.#options.streams.get(rawKey.toString('utf8'))
      if (stream === undefined || entries.length === 0) continue
      // A full batch means we were far behind: the entries right after lastId may have been trimmed.
      if (entries.length >= count && await this.#trimmedAfter(stream)) reportGap(stream, log)
      // Every instance that could not publish announces a gap once Redis is back: one reload covers them all.
      let gap = false
      for (const [rawId, fields] of entries) {
        stream.lastId = rawId.toString('latin1')
        if (this.#deliver(stream, fields, Number(stream.lastId.slice(0, stream.lastId.indexOf('-'))))) gap = true
      }
      if (gap) reportGap(stream, log)
    }
  }

  /** `sentAt`: the stream id's milliseconds, Redis's clock when the entry was added. Returns whether it announced a gap. */
  #deliver (stream: Stream, fields: Buffer[], sentAt: number): boolean {
    const { log } = this.#options
    const { instance, kind, data, seq } = readEntry(fields)
    if (instance === this.#options.instanceId) return false
    if (kind === KIND.gap) return true
    if (data === undefined || (kind !== KIND.update && kind !== KIND.awareness)) {
      log.warn({ key: stream.key }, 'redis bus: skipped a malformed stream entry')
      return false
    }
    const message: BusMessage = { kind: kind === KIND.update ? 'update' : 'awareness', data: new Uint8Array(data), sentAt, ...(seq === undefined ? {} : { seq }) }
    if (message.kind === 'awareness') stream.awarenessOwners.record(instance, message.data)
    dispatch(stream, message, log)
    return false
  }

  /** Whether entries after `stream.lastId` may be gone: the stream's oldest entry is newer than it. */
  async #trimmedAfter (stream: Stream): Promise<boolean> {
    const first = await this.#options.reader.xrange(stream.key, '-', '+', 'COUNT', 1)
    const id = first[0]?.[0]
    return id === undefined || compareIds(id, stream.lastId) > 0
  }

  /**
   * After the reading connection dropped: a stream that lost entries (trimmed, or Redis restarted without
   * persistence) cannot be replayed from where we were, so its rooms reload from storage.
   */
  async #checkGaps (): Promise<void> {
    for (const stream of [...this.#options.streams.values()]) {
      const last = await this.#options.reader.xrevrange(stream.key, '+', '-', 'COUNT', 1)
      const newest = last[0]?.[0]
      if (newest === undefined || compareIds(newest, stream.lastId) < 0) {
        // Emptied or recreated: ids start over, so read it from the beginning.
        stream.lastId = '0-0'
        reportGap(stream, this.#options.log)
      } else if (await this.#trimmedAfter(stream)) {
        reportGap(stream, this.#options.log)
      }
    }
  }

  async #readerReady (): Promise<void> {
    const { reader } = this.#options
    while (!this.#closed && reader.status !== 'ready') {
      await new Promise<void>((resolve) => {
        const ready = (): void => { clearTimeout(timer); resolve() }
        const timer = setTimeout(() => { reader.off('ready', ready); resolve() }, 250)
        reader.once('ready', ready)
      })
    }
  }

  /** Stops reading: disconnects the reading connection and resolves when the loop has ended. */
  async close (): Promise<void> {
    this.#closed = true
    this.#wake?.()
    this.#options.reader.disconnect()
    await this.#loop.catch(() => {})
  }
}
