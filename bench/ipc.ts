/**
 * Speaking to a load generator: a forked process that answers each command sent over IPC with one
 * message carrying the command's id and its result or error. `LoadGeneratorProcess` is the
 * orchestrator's side, `serveCommands` the load generator's.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { processCpuMs } from './servers.js'

interface Answer {
  readonly id: number
  readonly result?: unknown
  readonly error?: string
}

/** The orchestrator's side of one load generator, forked from `script` and sent commands of type `C`. */
export class LoadGeneratorProcess<C> {
  readonly #child: ChildProcess
  readonly #waiting = new Map<number, { resolve: (value: any) => void, reject: (error: Error) => void }>()
  #next = 0

  /** `name` says which load generator failed, in errors. */
  constructor (script: string, name: string) {
    this.#child = fork(script, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.#child.on('message', (message: Answer) => {
      const waiter = this.#waiting.get(message.id)
      if (waiter === undefined) return
      this.#waiting.delete(message.id)
      if (message.error !== undefined) waiter.reject(new Error(`${name}: ${message.error}`))
      else waiter.resolve(message.result)
    })
    this.#child.on('exit', (code) => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error(`${name} exited with ${code}`))
      this.#waiting.clear()
    })
  }

  /** The load generator's answer to `command`; its error, or its exit, rejects. */
  call<T> (command: C): Promise<T> {
    const id = ++this.#next
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      this.#child.send({ id, command })
    })
  }

  /** CPU time of the load generator's process so far, in ms. */
  cpuMs (): number {
    return processCpuMs(this.#child.pid!)
  }

  /** Disconnects; the load generator exits (see `serveCommands`). */
  kill (): void {
    this.#child.disconnect()
  }
}

/**
 * The load generator's side: answers every command with what `handle` resolves it to, or with the stack
 * of what it threw, and exits once the orchestrator disconnects.
 */
export const serveCommands = <C>(handle: (command: C) => Promise<unknown>): void => {
  process.on('message', (message: { id: number, command: C }) => {
    handle(message.command).then(
      (result) => process.send!({ id: message.id, result }),
      (error: unknown) => process.send!({ id: message.id, error: error instanceof Error ? error.stack : String(error) }),
    )
  })
  process.on('disconnect', () => process.exit(0))
}
