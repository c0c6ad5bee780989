/**
 * Publishing to the rooms' Redis streams. Publishing never queues: a message that cannot go now fails,
 * and for an update the room is remembered; once Redis answers again a `gap` entry tells the other
 * instances to reload that room. Everything published is committed first, so storage holds what they
 * missed.
 */
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { BusMessage } from './bus.js'
import { KIND, streamKey } from './redis-stream.js'

export interface RedisPublisherOptions {
  /** The publishing connection, made without an offline queue (see RedisBus). */
  readonly writer: Redis
  readonly instanceId: string
  readonly prefix: string
  /** Each room's stream keeps about this many entries (`XADD MAXLEN ~`). */
  readonly maxLen: number
  readonly log: Logger
}

export class RedisPublisher {
  readonly #options: RedisPublisherOptions
  /** Rooms whose publish failed: announce a gap for each once Redis answers again. */
  readonly #unpublished = new Set<string>()
  /** Publishing fails since the last success: told once per outage, not once per message. */
  #failing = false
  #closed = false

  constructor (options: RedisPublisherOptions) {
    this.#options = options
  }

  async publish (room: string, message: BusMessage): Promise<void> {
    try {
      await this.#add(room, KIND[message.kind], Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength), message.seq)
      if (this.#failing) this.#options.log.info('redis bus: publishing works again')
      this.#failing = false
      if (this.#unpublished.size > 0) void this.announceGaps()
    } catch (error) {
      if (message.kind === 'update') this.#unpublished.add(room)
      if (!this.#failing && !this.#closed) this.#options.log.warn({ err: error, room }, 'redis bus: publishing failed; other instances read what they miss from storage until it works again')
      this.#failing = true
      throw error
    }
  }

  async #add (room: string, kind: string, data: Buffer, seq?: number): Promise<void> {
    const { writer, prefix, maxLen, instanceId } = this.#options
    await this.writerReady()
    const numbered = seq === undefined ? [] : ['s', String(seq)]
    await writer.xadd(streamKey(prefix, room), 'MAXLEN', '~', maxLen, '*', 'i', instanceId, 'k', kind, ...numbered, 'd', data)
  }

  /** Publishes a `gap` for every room whose update could not be published; stops at the first failure. */
  async announceGaps (): Promise<void> {
    for (const room of [...this.#unpublished]) {
      try {
        await this.#add(room, KIND.gap, Buffer.alloc(0))
        this.#unpublished.delete(room)
      } catch (error) {
        this.#options.log.warn({ err: error, room }, 'redis bus: cannot announce a gap yet')
        return
      }
    }
  }

  /**
   * The id of the newest entry of `key` ('0-0' when none): a new subscriber reads what comes after it.
   * Rejects when Redis is away.
   */
  async tail (key: string): Promise<string> {
    await this.writerReady()
    const last = await this.#options.writer.xrevrange(key, '+', '-', 'COUNT', 1)
    return last[0]?.[0] ?? '0-0'
  }

  /**
   * Gives a connection that is (re)connecting a moment to get there, so that a bus used right after it
   * was created, or a blip of a few hundred ms, does not fail; a longer outage fails fast.
   */
  async writerReady (timeoutMs = 1000): Promise<void> {
    const { writer } = this.#options
    if (writer.status === 'ready' || this.#closed) return
    await new Promise<void>((resolve) => {
      const ready = (): void => { clearTimeout(timer); resolve() }
      const timer = setTimeout(() => { writer.off('ready', ready); resolve() }, timeoutMs)
      writer.once('ready', ready)
    })
  }

  close (): void {
    this.#closed = true
  }
}
