/**
 * Which instances are alive. Each instance refreshes a key of its own in Redis every heartbeat (it
 * expires after three); when the key of an instance that announced awareness states stays missing for two
 * checks in a row, its states are removed in every room at once, instead of after y-protocols' 30 s
 * timeout. After Redis restarts every key is gone until refreshed, so no verdict is given for a while.
 */
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { aliveKey, dispatch, type Stream } from './redis-stream.js'

export interface InstanceLivenessOptions {
  readonly writer: Redis
  /** The streams this instance reads, whose `awarenessOwners` says which instance announced which state. */
  readonly streams: ReadonlyMap<string, Stream>
  readonly instanceId: string
  readonly prefix: string
  readonly heartbeatMs: number
  readonly log: Logger
}

export class InstanceLiveness {
  readonly #options: InstanceLivenessOptions
  readonly #heartbeat: NodeJS.Timeout
  /** Instances whose liveness key was missing at the last check: gone if it is still missing at the next. */
  #missing = new Set<string>()
  /** No liveness verdicts before this time: after a Redis restart every key is gone until refreshed. */
  #quietUntil = 0
  #closed = false

  constructor (options: InstanceLivenessOptions) {
    this.#options = options
    this.#heartbeat = setInterval(() => { void this.#beat().then(() => this.#checkInstances()) }, options.heartbeatMs)
    this.#heartbeat.unref()
  }

  /** The writing connection is (again) ready: refresh this instance's key, and wait before judging others. */
  reconnected (): void {
    this.#quietUntil = Date.now() + 3 * this.#options.heartbeatMs
    this.#missing.clear()
    void this.#beat()
  }

  async #beat (): Promise<void> {
    const { writer, prefix, instanceId, heartbeatMs } = this.#options
    if (this.#closed || writer.status !== 'ready') return
    await writer.set(aliveKey(prefix, instanceId), '1', 'PX', 3 * heartbeatMs).catch(() => {})
  }

  /** Removes, in every room, the awareness states of instances whose liveness key expired. */
  async #checkInstances (): Promise<void> {
    const { writer, prefix, log } = this.#options
    if (this.#closed || writer.status !== 'ready' || Date.now() < this.#quietUntil) return
    const streams = [...this.#options.streams.values()]
    const instances = [...new Set(streams.flatMap((stream) => [...stream.awarenessOwners.instances()]))]
    if (instances.length === 0) return
    let alive: number[]
    try {
      alive = await Promise.all(instances.map((instance) => writer.exists(aliveKey(prefix, instance))))
    } catch {
      return
    }
    const missing = new Set(instances.filter((_, i) => alive[i] === 0))
    for (const instance of missing) {
      if (!this.#missing.has(instance)) continue
      log.info({ instance }, 'redis bus: an instance stopped without saying goodbye; removing its awareness states')
      for (const stream of streams) {
        const removal = stream.awarenessOwners.removeInstance(instance)
        if (removal !== null) dispatch(stream, { kind: 'awareness', data: removal }, log)
      }
      missing.delete(instance)
    }
    this.#missing = missing
  }

  /** Stops the heartbeat. */
  stop (): void {
    this.#closed = true
    clearInterval(this.#heartbeat)
  }

  /** Deletes this instance's key: a clean stop has published its sockets' awareness removals already. */
  async goodbye (): Promise<void> {
    const { writer, prefix, instanceId } = this.#options
    await writer.del(aliveKey(prefix, instanceId)).catch(() => {})
  }
}
