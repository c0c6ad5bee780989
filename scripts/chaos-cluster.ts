import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as Y from 'yjs'
import { PostgresStorage } from '../server/storage/postgres.js'
import { freePort, TempPostgres } from '../test/helpers/services.js'
import { startServerProcess, type ServerProcess } from '../test/helpers/server-process.js'
import { ChaosRedis } from './chaos-services.js'
import { FaultProxy } from './fault-proxy.js'
import { RoundRobinProxy } from './round-robin-proxy.js'

const SCHEMA = 'chaos'

/**
 * What a chaos run breaks: three instances (real server processes on loopback ports that the no-affinity
 * proxy in front knows, so that it finds a restarted one again), each reaching its own Redis and Postgres
 * through fault proxies of its own, on a throw-away Redis and Postgres.
 */
export class ChaosCluster {
  readonly redis: ChaosRedis
  readonly postgres: TempPostgres
  readonly proxy: RoundRobinProxy
  readonly proxyPort: number
  /** Each instance's port; an instance that finds its port taken when it restarts moves to another. */
  readonly ports: number[]
  readonly redisProxies: readonly FaultProxy[]
  readonly postgresProxies: readonly FaultProxy[]
  readonly instances: Array<ServerProcess | null>
  /** Lines about instances that died by themselves or failed to start. */
  readonly incidents: string[] = []
  readonly #env: Record<string, string>
  #reader: PostgresStorage | null = null

  private constructor (parts: {
    redis: ChaosRedis, postgres: TempPostgres, proxy: RoundRobinProxy, proxyPort: number, ports: number[],
    redisProxies: FaultProxy[], postgresProxies: FaultProxy[], env: Record<string, string>,
  }) {
    this.redis = parts.redis
    this.postgres = parts.postgres
    this.proxy = parts.proxy
    this.proxyPort = parts.proxyPort
    this.ports = parts.ports
    this.redisProxies = parts.redisProxies
    this.postgresProxies = parts.postgresProxies
    this.instances = parts.ports.map(() => null)
    this.#env = parts.env
  }

  static async start (count = 3, env: Record<string, string> = {}): Promise<ChaosCluster> {
    const redis = await ChaosRedis.start()
    let postgres: TempPostgres
    try {
      postgres = await TempPostgres.start()
    } catch (error) {
      await redis.destroy()
      throw error
    }
    const redisProxies = Array.from({ length: count }, () => new FaultProxy(redis.port))
    const postgresProxies = Array.from({ length: count }, () => new FaultProxy(postgres.port))
    await Promise.all([...redisProxies, ...postgresProxies].map((p) => p.listen()))
    const ports: number[] = []
    for (let i = 0; i < count; i++) ports.push(await freePort())
    const proxy = new RoundRobinProxy(ports.map((port) => ({ host: '127.0.0.1', port })))
    const proxyPort = await proxy.listen(0, '127.0.0.1')
    const cluster = new ChaosCluster({ redis, postgres, proxy, proxyPort, ports, redisProxies, postgresProxies, env })
    try {
      await Promise.all(ports.map((_, i) => cluster.startInstance(i)))
    } catch (error) {
      await cluster.destroy()
      throw error
    }
    return cluster
  }

  get url (): string {
    return `ws://127.0.0.1:${this.proxyPort}`
  }

  get databaseUrl (): string {
    return this.postgres.url
  }

  /** The log lines of every instance process started, in start order: written out when a run fails. */
  readonly runs: Array<{ readonly instance: number, readonly startedAt: string, readonly logs: ReadonlyArray<Record<string, unknown>> }> = []

  /** Writes each instance process's log lines to `<dir>/instance-<n>-<start>.log` (one JSON line each). */
  writeLogs (dir: string): void {
    mkdirSync(dir, { recursive: true })
    this.runs.forEach((run, k) => {
      const file = join(dir, `instance-${run.instance}-${String(k + 1).padStart(3, '0')}.log`)
      writeFileSync(file, `${JSON.stringify({ startedAt: run.startedAt })}\n${run.logs.map((line) => JSON.stringify(line)).join('\n')}\n`)
    })
  }

  /** Starts instance `i` on its port; retried, since a port just freed by a kill may linger a moment. */
  async startInstance (i: number): Promise<ServerProcess> {
    let lastError: unknown = null
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const instance = await startServerProcess({
          DATABASE_URL: `postgres://postgres@127.0.0.1:${this.postgresProxies[i]!.port}/postgres`,
          DATABASE_SCHEMA: SCHEMA,
          REDIS_URL: `redis://127.0.0.1:${this.redisProxies[i]!.port}`,
          REDIS_PREFIX: 'chaos:',
          SHUTDOWN_SPREAD_MS: '500',
          // Every client comes from 127.0.0.1 through one proxy: the internet-facing limits do not apply.
          MAX_MESSAGES_PER_SECOND: '100000',
          MAX_CONNECTIONS_PER_IP: '100000',
          MAX_POLL_REQUESTS_PER_SECOND: '100000',
          ...this.#env,
        }, { port: this.ports[i]!, startTimeoutMs: 30_000 })
        this.instances[i] = instance
        this.runs.push({ instance: i + 1, startedAt: new Date().toISOString(), logs: instance.logs })
        void instance.exited.then((code) => {
          if (this.instances[i] === instance) this.incidents.push(`instance ${i + 1} exited by itself (${code})`)
        })
        return instance
      } catch (error) {
        lastError = error
        const message = (error as Error).message
        // Another process took the port while the instance was down: move it, and tell the proxy.
        if (message.includes('EADDRINUSE')) {
          this.ports[i] = await freePort()
          this.proxy.setBackend(i, { host: '127.0.0.1', port: this.ports[i] })
          continue
        }
        this.incidents.push(`instance ${i + 1} failed to start (attempt ${attempt + 1}): ${message.slice(0, 300)}`)
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
    throw lastError
  }

  /** Stops instance `i` with `signal` and waits for it to exit (SIGTERM: it drains first). */
  async stopInstance (i: number, signal: NodeJS.Signals): Promise<number | string> {
    const instance = this.instances[i]
    if (instance === null || instance === undefined) return 'not running'
    this.instances[i] = null
    const timer = signal === 'SIGKILL' ? null : setTimeout(() => instance.child.kill('SIGKILL'), 20_000)
    const code = await instance.kill(signal)
    if (timer !== null) clearTimeout(timer)
    return code
  }

  /** The room's text as instance `i` holds it (it loads the room if it had not). */
  async instanceText (i: number, room: string): Promise<string> {
    const instance = this.instances[i]
    if (instance === null || instance === undefined) throw new Error(`instance ${i + 1} is not running`)
    const response = await fetch(`${instance.http}/api/docs/${encodeURIComponent(room)}/update`, { signal: AbortSignal.timeout(5000) })
    if (!response.ok) throw new Error(`instance ${i + 1}: GET update answered ${response.status}`)
    const doc = new Y.Doc()
    try {
      Y.applyUpdate(doc, new Uint8Array(await response.arrayBuffer()))
      return doc.getText('text').toString()
    } finally {
      doc.destroy()
    }
  }

  /** The room's text as Postgres holds it (read directly, not through a fault proxy). */
  async storedText (room: string): Promise<string> {
    this.#reader ??= await PostgresStorage.open({ url: this.postgres.url, schema: SCHEMA, connectTimeoutMs: 2000, maxConnections: 2 })
    const doc = new Y.Doc()
    try {
      for (const update of (await this.#reader.load(room)).updates) Y.applyUpdate(doc, update)
      return doc.getText('text').toString()
    } finally {
      doc.destroy()
    }
  }

  async destroy (): Promise<void> {
    await Promise.all(this.instances.map((_, i) => this.stopInstance(i, 'SIGKILL')))
    await this.#reader?.close().catch(() => {})
    await this.proxy.close()
    await Promise.all([...this.redisProxies, ...this.postgresProxies].map((p) => p.close()))
    await this.redis.destroy()
    await this.postgres.destroy()
  }
}
