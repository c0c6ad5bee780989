import { fork, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor } from './wait.js'

const script = join(dirname(fileURLToPath(import.meta.url)), 'yjs14-child.js')

/**
 * A Yjs 14 client (`@y/y` 14 and `@y/websocket` 4, or long-polling) running in a child process
 * (`yjs14-child.ts`), so that no process holds documents of both Yjs lines. Its shared type is
 * `doc.get('text')`, which Yjs 13 clients read as `getText('text')`.
 */
export class Yjs14Client {
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve (value: unknown): void, reject (error: Error): void }>()
  #next = 1

  private constructor (child: ChildProcess) {
    this.#child = child
    child.on('message', ({ id, result, error }: { id: number, result?: unknown, error?: string }) => {
      const waiter = this.#pending.get(id)
      this.#pending.delete(id)
      if (error !== undefined) waiter?.reject(new Error(`Yjs 14 client: ${error}`))
      else waiter?.resolve(result)
    })
    child.once('exit', (code, signal) => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`Yjs 14 client exited (${code ?? signal})`))
      this.#pending.clear()
    })
  }

  static async start (): Promise<Yjs14Client> {
    // `advanced` serialization carries Uint8Arrays as they are.
    const child = fork(script, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const client = new Yjs14Client(child)
    // The child says `ready` (as request 0) once it listens.
    await new Promise<void>((resolve, reject) => client.#pending.set(0, { resolve: () => resolve(), reject }))
    return client
  }

  #call<T> (command: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.#child.send({ id, command, args })
    })
  }

  /** Connects over WebSocket with the stock `@y/websocket` provider. */
  connect (url: string, room: string, params: Record<string, string> = {}): Promise<void> {
    return this.#call('connect', { url, room, params })
  }

  /**
   * Connects over long-polling: `http` is a server's `http://host:port`, or several, which the client's
   * requests go to in turn.
   */
  connectPolling (http: string | readonly string[], room: string, params: Record<string, string> = {}): Promise<void> {
    return this.#call('connectPolling', { bases: typeof http === 'string' ? [http] : http, room, params })
  }

  disconnect (): Promise<void> { return this.#call('disconnect') }
  clientID (): Promise<number> { return this.#call('clientID') }
  insert (index: number, value: string): Promise<void> { return this.#call('insert', { index, value }) }
  delete (index: number, length: number): Promise<void> { return this.#call('delete', { index, length }) }
  text (): Promise<string> { return this.#call('text') }
  status (): Promise<{ synced: boolean, closes: number[] }> { return this.#call('status') }
  setAwareness (state: unknown): Promise<void> { return this.#call('setAwareness', { state }) }
  /** Every awareness state the client holds, its own included. */
  awareness (): Promise<Array<[number, unknown]>> { return this.#call('awareness') }
  /** The client's whole document as a (Yjs 14-encoded) update. */
  update (): Promise<Uint8Array> { return this.#call('update') }

  async synced (timeoutMs = 10_000): Promise<void> {
    await waitFor(async () => (await this.status()).synced, { timeoutMs, message: 'Yjs 14 client sync' })
  }

  /** Waits until the client's text is `expected`. */
  async hasText (expected: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(async () => (await this.text()) === expected, { timeoutMs, message: `Yjs 14 client's text ${JSON.stringify(expected)}` })
  }

  async stop (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = new Promise((resolve) => this.#child.once('exit', resolve))
    this.#child.kill('SIGKILL')
    await exited
  }
}
