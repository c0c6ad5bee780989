import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'

export interface Backend {
  readonly host: string
  readonly port: number
}

/**
 * A load balancer without session affinity, for trying many instances locally and in tests: every new
 * HTTP request or WebSocket upgrade goes to the next backend in turn, skipping backends that refuse the
 * connection. Upgrades are piped as raw bytes, so the proxy never looks inside WebSocket frames.
 */
export class RoundRobinProxy {
  readonly #backends: Backend[]
  readonly #server: Server
  readonly #sockets = new Set<Duplex>()
  #next = 0

  constructor (backends: readonly Backend[]) {
    if (backends.length === 0) throw new RangeError('backends must not be empty')
    this.#backends = [...backends]
    this.#server = createServer((req, res) => {
      void this.#pick().then((backend) => {
        if (backend === null) return void res.writeHead(502).end('no backend answers\n')
        const upstream = httpRequest({ host: backend.host, port: backend.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        })
        upstream.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end() })
        req.pipe(upstream)
      })
    })
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head))
  }

  /** Replaces backend `index` (a restarted backend that had to move to another port). */
  setBackend (index: number, backend: Backend): void {
    if (index < 0 || index >= this.#backends.length) throw new RangeError(`no backend ${index}`)
    this.#backends[index] = backend
  }

  async listen (port = 0, host = '127.0.0.1'): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(port, host, () => resolve())
    })
    return (this.#server.address() as AddressInfo).port
  }

  /** Connects to the next backend that accepts a TCP connection, or null when none does. */
  async #pick (): Promise<Backend | null> {
    for (let tried = 0; tried < this.#backends.length; tried++) {
      const backend = this.#backends[this.#next++ % this.#backends.length]!
      const ok = await new Promise<boolean>((resolve) => {
        const probe = connect(backend.port, backend.host)
        probe.once('connect', () => { probe.destroy(); resolve(true) })
        probe.once('error', () => resolve(false))
      })
      if (ok) return backend
    }
    return null
  }

  #upgrade (req: IncomingMessage, client: Duplex, head: Buffer): void {
    this.#track(client)
    client.on('error', () => client.destroy())
    void this.#pick().then((backend) => {
      if (backend === null || client.destroyed) {
        client.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
        return
      }
      const upstream: Socket = connect(backend.port, backend.host)
      this.#track(upstream)
      upstream.once('connect', () => {
        const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`]
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`)
        upstream.write(lines.join('\r\n') + '\r\n\r\n')
        if (head.length > 0) upstream.write(head)
        upstream.pipe(client)
        client.pipe(upstream)
      })
      // An instance that dies cuts its sockets abruptly, exactly as a real load balancer would pass on.
      upstream.on('error', () => { upstream.destroy(); client.destroy() })
      upstream.on('close', () => client.destroy())
      client.on('close', () => upstream.destroy())
    })
  }

  #track (socket: Duplex): void {
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
  }

  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
