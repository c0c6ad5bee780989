import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { chownSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { waitFor } from './wait.js'

const run = promisify(execFile)
const PG_BIN = '/usr/lib/postgresql/15/bin'

/** Ports below Linux's ephemeral range (32768-60999), which outgoing connections never take. */
const FIXED_PORTS = { from: 10_000, to: 32_000 }

/**
 * A TCP port nobody listens on right now, below the ephemeral range: a process restarted on it (a killed
 * instance coming back) would otherwise find it taken by an outgoing connection that the kernel gave the
 * same number meanwhile, and fail with EADDRINUSE.
 */
export const freePort = async (): Promise<number> => {
  for (;;) {
    const port = FIXED_PORTS.from + Math.floor(Math.random() * (FIXED_PORTS.to - FIXED_PORTS.from))
    const server = createServer()
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (!listening) continue
    await new Promise<void>((resolve) => server.close(() => resolve()))
    return port
  }
}

/** Whether something on 127.0.0.1 accepts TCP connections on `port` now: a started service is up. */
export const accepts = (port: number): Promise<boolean> => new Promise((resolve) => {
  const socket = connect(port, '127.0.0.1')
  socket.once('connect', () => { socket.destroy(); resolve(true) })
  socket.once('error', () => resolve(false))
})

/**
 * A private, throwaway redis-server that a test may stop and start again. Without persistence, a restart
 * comes back empty; with `persistent`, it keeps an append-only file (synced on every write) in a folder of
 * its own and comes back with everything it had.
 */
export class TempRedis {
  readonly port: number
  readonly #dir: string | null
  #child: ChildProcess | null = null

  private constructor (port: number, dir: string | null) {
    this.port = port
    this.#dir = dir
  }

  static async start ({ persistent = false }: { persistent?: boolean } = {}): Promise<TempRedis> {
    const redis = new TempRedis(await freePort(), persistent ? mkdtempSync(join(tmpdir(), 'yjs-relay-redis-')) : null)
    await redis.start()
    return redis
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** The folder of its append-only file, if persistent. */
  get dir (): string | null {
    return this.#dir
  }

  async start (): Promise<void> {
    if (this.#child !== null) return
    const persistence = this.#dir === null
      ? ['--appendonly', 'no']
      : ['--dir', this.#dir, '--appendonly', 'yes', '--appendfsync', 'always']
    this.#child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...persistence], { stdio: 'ignore' })
    await waitFor(() => accepts(this.port), { timeoutMs: 10_000, message: `redis-server on ${this.port}` })
  }

  /** Stops the server with SIGKILL: without persistence, everything in it is lost. */
  async stop (): Promise<void> {
    const child = this.#child
    if (child === null) return
    this.#child = null
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
  }
}

/** Stops `redis` and removes its append-only file, if it kept one. */
export const destroyRedis = async (redis: TempRedis | null): Promise<void> => {
  await redis?.stop()
  if (redis?.dir != null) rmSync(redis.dir, { recursive: true, force: true })
}

/** A private Postgres cluster in a temporary folder (initdb, run as the `postgres` user), stoppable. */
export class TempPostgres {
  readonly port: number
  readonly #dir: string
  #running = false

  private constructor (port: number, dir: string) {
    this.port = port
    this.#dir = dir
  }

  static async start (): Promise<TempPostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'yjs-relay-pg-'))
    const pg = new TempPostgres(await freePort(), dir)
    try {
      const asPostgres = process.getuid?.() === 0
      if (asPostgres) {
        const { stdout } = await run('id', ['-u', 'postgres'])
        const { stdout: gid } = await run('id', ['-g', 'postgres'])
        chownSync(dir, Number(stdout.trim()), Number(gid.trim()))
      }
      await pg.#pg('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
      await pg.start()
    } catch (error) {
      await pg.destroy()
      throw error
    }
    return pg
  }

  get url (): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }

  async #pg (command: string, args: string[]): Promise<void> {
    const binary = join(PG_BIN, command)
    if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', binary, ...args], { cwd: this.#dir })
    else await run(binary, args, { cwd: this.#dir })
  }

  async start (): Promise<void> {
    await this.#pg('pg_ctl', ['-D', join(this.#dir, 'data'), '-l', join(this.#dir, 'log'), '-w', '-t', '30', '-o',
      `-p ${this.port} -k ${this.#dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start'])
    this.#running = true
  }

  /** Fast shutdown: open connections are terminated, as when a database fails over. */
  async stop (): Promise<void> {
    if (!this.#running) return
    await this.#pg('pg_ctl', ['-D', join(this.#dir, 'data'), '-m', 'fast', '-w', '-t', '30', 'stop'])
    this.#running = false
  }

  async destroy (): Promise<void> {
    await this.stop().catch(() => {})
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
