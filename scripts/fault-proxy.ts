import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy on loopback that injects faults between one instance and one service (Redis or
 * Postgres): added latency on every chunk in both directions, dropping every open connection at once,
 * and a cut during which every connection is closed as soon as it is accepted, as a broken route would. The proxy never looks inside the bytes, so it serves any protocol.
 */
export class FaultProxy {
  readonly #target: { readonly host: string, readonly port: number }
  readonly #server: Server
  readonly #pairs = new Set<{ client: Socket, upstream: Socket }>()
  #latencyMs = 0
  #cut = false
  #port = 0

  constructor (targetPort: number, targetHost = '127.0.0.1') {
    this.#target = { host: targetHost, port: targetPort }
    this.#server = createServer((client) => this.#accept(client))
  }

  get port (): number {
    return this.#port
  }

  get latencyMs (): number {
    return this.#latencyMs
  }

  async listen (port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(port, '127.0.0.1', () => resolve())
    })
    this.#port = (this.#server.address() as AddressInfo).port
    return this.#port
  }

  /** Delays every chunk by `ms` from now on (0: none); order within a connection is kept. */
  setLatency (ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('latency must be a number >= 0')
    this.#latencyMs = ms
  }

  /** Closes every open connection, as a network blip or a load balancer's idle timeout would. */
  dropAll (): number {
    const count = this.#pairs.size
    for (const pair of this.#pairs) this.#destroy(pair)
    return count
  }

  /** While cut, open connections are closed and new ones are closed on arrival. */
  setCut (cut: boolean): void {
    this.#cut = cut
    if (cut) this.dropAll()
  }

  #accept (client: Socket): void {
    if (this.#cut) {
      client.destroy()
      return
    }
    client.setNoDelay(true)
    const upstream = connect(this.#target.port, this.#target.host)
    upstream.setNoDelay(true)
    const pair = { client, upstream }
    this.#pairs.add(pair)
    this.#pipe(client, upstream)
    this.#pipe(upstream, client)
    const end = (): void => this.#destroy(pair)
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  }

  /** Forwards `from` to `to`, each chunk held for the latency in force when it arrived. */
  #pipe (from: Socket, to: Socket): void {
    const queue: Array<{ chunk: Buffer, due: number }> = []
    let timer: NodeJS.Timeout | null = null
    const drain = (): void => {
      timer = null
      const now = performance.now()
      while (queue.length > 0 && queue[0]!.due <= now) {
        const { chunk } = queue.shift()!
        if (!to.destroyed) to.write(chunk)
      }
      if (queue.length > 0) timer = setTimeout(drain, queue[0]!.due - now)
    }
    from.on('data', (chunk: Buffer) => {
      if (this.#latencyMs === 0 && queue.length === 0) {
        if (!to.destroyed) to.write(chunk)
        return
      }
      // Never earlier than the chunk before it: a latency lowered mid-flight must not reorder bytes.
      const last = queue.length > 0 ? queue[queue.length - 1]!.due : 0
      queue.push({ chunk, due: Math.max(performance.now() + this.#latencyMs, last) })
      if (timer === null) timer = setTimeout(drain, this.#latencyMs)
    })
    from.on('close', () => { if (timer !== null) clearTimeout(timer) })
  }

  #destroy (pair: { client: Socket, upstream: Socket }): void {
    if (!this.#pairs.delete(pair)) return
    // destroy(), not resetAndDestroy(): an RST on a socket still connecting left a request behind that
    // kept the process spinning at exit (Node 20). To ioredis and pg either is a connection lost.
    pair.client.destroy()
    pair.upstream.destroy()
  }

  async close (): Promise<void> {
    this.dropAll()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
