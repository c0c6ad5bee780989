/**
 * The servers under test, each in its own process: start, stop (gracefully or with SIGKILL), restart on
 * the same data, and read its CPU time and RSS from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { accepts } from '../test/helpers/services.js'
import type { Dialect } from './wire.js'

const dist = join(dirname(fileURLToPath(import.meta.url)), '..')

export type ServerKind = 'project' | 'project-memory' | 'reference' | 'hocuspocus'

export const SERVER_KINDS: readonly ServerKind[] = ['project', 'project-memory', 'reference', 'hocuspocus']

export const dialectOf = (kind: ServerKind): Dialect => kind === 'hocuspocus' ? 'hocuspocus' : 'y-websocket'

export interface ServerOptions {
  /** Folder for the server's storage; kept across restarts. */
  readonly dataDir: string
  /** Give the reference server LevelDB storage (it has none by default). */
  readonly persist?: boolean
  /** More environment for the server (the cluster benchmark's DATABASE_URL, REDIS_URL, ...). */
  readonly env?: Readonly<Record<string, string>>
  /** Run this launcher (a file under dist/bench/launchers) instead of the kind's own. */
  readonly launcher?: string
  /** Keep the project's per-socket message limit at its default (a scenario about staying inside it). */
  readonly defaultLimits?: boolean
}

const freePort = (): Promise<number> => new Promise((resolve, reject) => {
  const probe = createServer()
  probe.once('error', reject)
  probe.listen(0, '127.0.0.1', () => {
    const { port } = probe.address() as { port: number }
    probe.close(() => resolve(port))
  })
})

const commandOf = (kind: ServerKind): string => ({
  project: join(dist, 'server', 'main.js'),
  'project-memory': join(dist, 'bench', 'launchers', 'project-memory.js'),
  reference: join(dist, 'bench', 'launchers', 'reference.js'),
  hocuspocus: join(dist, 'bench', 'launchers', 'hocuspocus.js'),
})[kind]

const TICKS_PER_SECOND = 100

/** User + system CPU time of process `pid` so far, in ms (10 ms resolution; Linux /proc). */
export const processCpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND
}

export class ServerProcess {
  readonly kind: ServerKind
  readonly options: ServerOptions
  port = 0
  #child: ChildProcess | null = null
  #stderr = ''

  constructor (kind: ServerKind, options: ServerOptions) {
    this.kind = kind
    this.options = options
  }

  get url (): string {
    return `ws://127.0.0.1:${this.port}`
  }

  get pid (): number {
    return this.#child?.pid ?? 0
  }

  async start (): Promise<void> {
    if (this.port === 0) this.port = await freePort()
    const env: Record<string, string> = {
      ...process.env as Record<string, string>,
      PORT: String(this.port),
      HOST: '127.0.0.1',
      DATA_DIR: this.options.dataDir,
      LOG_LEVEL: 'warn',
      // The load generators are a few processes on one address sending thousands of messages a second:
      // the per-socket, per-address and per-room limits are for the internet, not for this bench.
      ...(this.options.defaultLimits === true ? {} : { MAX_MESSAGES_PER_SECOND: '1000000' }),
      MAX_CONNECTIONS_PER_IP: '100000',
      MAX_CONNECTIONS_PER_ROOM: '100000',
      MAX_CONNECTIONS: '100000',
    }
    Object.assign(env, this.options.env ?? {})
    if (this.kind === 'reference' && this.options.persist === true) env.YPERSISTENCE = join(this.options.dataDir, 'leveldb')
    this.#stderr = ''
    // BENCH_CPU_PROF=<folder>: profile the server; the profile is written when it stops gracefully.
    const profile = process.env.BENCH_CPU_PROF
    const flags = profile === undefined || profile === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`]
    const command = this.options.launcher === undefined ? commandOf(this.kind) : join(dist, 'bench', 'launchers', this.options.launcher)
    const child = this.#child = spawn(process.execPath, [...flags, command], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.#stderr = (this.#stderr + chunk).slice(-4000) })
    const deadline = Date.now() + 20_000
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`${this.kind} exited with ${child.exitCode}: ${this.#stderr}`)
      if (Date.now() > deadline) throw new Error(`${this.kind} did not listen within 20 s: ${this.#stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** SIGTERM (graceful: each server stores what it holds) or SIGKILL; resolves once the process is gone. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child
    if (child === null) return
    this.#child = null
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }

  async restart (): Promise<void> {
    await this.stop('SIGTERM')
    await this.start()
  }

  /** User + system CPU time of the server process so far, in ms (10 ms resolution). */
  cpuMs (): number {
    return processCpuMs(this.pid)
  }

  /** Resident set size in bytes. */
  rssBytes (): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8')
    const match = /VmRSS:\s+(\d+) kB/.exec(status)
    return match === null ? 0 : Number(match[1]) * 1024
  }
}
