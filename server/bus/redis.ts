/**
 * The bus over Redis Streams: one stream per room, each entry one update or awareness change tagged with
 * the publishing instance's id (so an instance skips its own entries).
 *
 * Two connections: one publishes (redis-publisher.ts) and keeps this instance's liveness key
 * (instance-liveness.ts); the other runs a single blocking read over the streams of every room this
 * instance has loaded (redis-reader.ts). redis-stream.ts holds what they share: keys, the entry format,
 * and handing messages to a room's handlers.
 */
import { randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import { checkNumber } from '../option-check.js'
import type { Bus, BusHandler, BusMessage, BusSubscription } from './bus.js'
import { InstanceLiveness } from './instance-liveness.js'
import { AwarenessOwners } from './awareness-owners.js'
import { RedisPublisher } from './redis-publisher.js'
import { RedisReader } from './redis-reader.js'
import { streamKey, type Stream } from './redis-stream.js'

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

const atLeast10 = (name: string, value: number): number => checkNumber(name, value, { min: 10 })

export class RedisBus implements Bus {
  readonly instanceId = randomUUID()
  readonly #log: Logger
  readonly #prefix: string
  readonly #writer: Redis
  readonly #streams = new Map<string, Stream>()
  readonly #publisher: RedisPublisher
  readonly #reading: RedisReader
  readonly #liveness: InstanceLiveness
  #closed = false

  constructor (options: RedisBusOptions) {
    const log = this.#log = options.log
    const prefix = this.#prefix = options.prefix ?? 'yjs-relay:'
    const maxLen = options.maxLen ?? 1000
    const blockMs = options.blockMs ?? 5000
    const heartbeatMs = atLeast10('heartbeatMs', options.heartbeatMs ?? 1000)
    atLeast10('maxLen', maxLen)
    atLeast10('blockMs', blockMs)
    const common: RedisOptions = {
      // Reconnect quickly: while Redis is away, instances only catch up through storage reloads.
      retryStrategy: (times) => Math.min(times * 100, 1000),
      lazyConnect: false,
    }
    // Publishing never queues: a message that cannot go now is replaced by a gap entry later.
    const writer = this.#writer = new Redis(options.url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 2000 })
    // Commands on the reader fail when its connection drops, so the read loop notices every outage.
    const reader = new Redis(options.url, { ...common, maxRetriesPerRequest: 0 })
    for (const [name, connection] of [['publisher', writer], ['reader', reader]] as const) {
      connection.on('error', (error: Error) => log.warn({ err: error, connection: name }, 'redis bus: connection error'))
    }
    const { instanceId } = this
    const streams = this.#streams
    this.#publisher = new RedisPublisher({ writer, instanceId, prefix, maxLen, log })
    this.#liveness = new InstanceLiveness({ writer, streams, instanceId, prefix, heartbeatMs, log })
    writer.on('ready', () => {
      this.#liveness.reconnected()
      void this.#publisher.announceGaps()
    })
    this.#reading = new RedisReader({ reader, writer, streams, instanceId, maxLen, blockMs, log })
  }

  async subscribe (room: string, handler: BusHandler): Promise<BusSubscription> {
    if (this.#closed) throw new Error('the bus is closed')
    const key = streamKey(this.#prefix, room)
    let stream = this.#streams.get(key)
    if (stream === undefined) {
      stream = { key, handlers: new Set(), awarenessOwners: new AwarenessOwners(), lastId: await this.#tail(key) }
      // Another subscribe for the same room may have finished while we waited.
      const existing = this.#streams.get(key)
      if (existing !== undefined) stream = existing
      else this.#streams.set(key, stream)
    }
    stream.handlers.add(handler)
    this.#reading.changed()
    const subscribed = stream
    return {
      close: async () => {
        subscribed.handlers.delete(handler)
        if (subscribed.handlers.size === 0 && this.#streams.get(key) === subscribed) {
          this.#streams.delete(key)
          this.#reading.changed()
        }
      },
    }
  }

  /** Where a new subscriber starts reading `key`: after its newest entry, or from the start when Redis is away. */
  async #tail (key: string): Promise<string> {
    try {
      return await this.#publisher.tail(key)
    } catch (error) {
      // Redis is away: read the whole (capped) stream once it is back; replaying is harmless.
      this.#log.warn({ err: error, key }, 'redis bus: cannot read the stream tail; will replay it')
      this.#reading.suspect()
      return '0-0'
    }
  }

  async publish (room: string, message: BusMessage): Promise<void> {
    await this.#publisher.publish(room, message)
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#publisher.close()
    this.#liveness.stop()
    await this.#reading.close()
    await this.#liveness.goodbye()
    await this.#writer.quit().catch(() => { this.#writer.disconnect() })
  }
}
