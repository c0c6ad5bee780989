import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { accepts, freePort } from '../test/helpers/services.js'
import { waitFor } from '../test/helpers/wait.js'

/**
 * A throw-away redis-server on a free loopback port, with an append-only file fsynced on every write, so
 * that it can be restarted with its data (a graceful stop, as a managed Redis failing over) or without
 * (killed and its folder emptied, as a Redis without persistence restarting).
 */
export class ChaosRedis {
  readonly port: number
  readonly #dir: string
  #child: ChildProcess | null = null

  private constructor (port: number, dir: string) {
    this.port = port
    this.#dir = dir
  }

  static async start (): Promise<ChaosRedis> {
    const redis = new ChaosRedis(await freePort(), mkdtempSync(join(tmpdir(), 'yjs-relay-chaos-redis-')))
    await redis.start()
    return redis
  }

  get running (): boolean {
    return this.#child !== null
  }

  async start (): Promise<void> {
    if (this.#child !== null) return
    mkdirSync(this.#dir, { recursive: true })
    const child = this.#child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.#dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
    ], { stdio: 'ignore' })
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`)
      return accepts(this.port)
    }, { timeoutMs: 15_000, message: `redis-server on ${this.port}` })
  }

  /** Stops Redis; with `keepData` false it is killed and its append-only file deleted. */
  async stop ({ keepData }: { keepData: boolean }): Promise<void> {
    const child = this.#child
    if (child === null) return
    this.#child = null
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill(keepData ? 'SIGTERM' : 'SIGKILL')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    if (!keepData) rmSync(this.#dir, { recursive: true, force: true })
  }

  async destroy (): Promise<void> {
    await this.stop({ keepData: false })
  }
}
