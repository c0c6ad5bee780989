/** The orchestrator's side of the load generators: forked processes spoken to over IPC. */
import { fork, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { processCpuMs } from './servers.js'
import type { AwaitCommand, AwaitResult, Command, OpenCommand, OpenResult, PrepareCommand, SendCommand, WriteCommand, WriteResult } from './loadgen.js'

const script = join(dirname(fileURLToPath(import.meta.url)), 'loadgen.js')

export class LoadGenerator {
  readonly #child: ChildProcess
  readonly #waiting = new Map<number, { resolve: (value: any) => void, reject: (error: Error) => void }>()
  #next = 0

  /** CPU time of the load generator's process so far, in ms. */
  cpuMs (): number {
    return processCpuMs(this.#child.pid!)
  }

  constructor () {
    this.#child = fork(script, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.#child.on('message', (message: { id: number, result?: unknown, error?: string }) => {
      const waiter = this.#waiting.get(message.id)
      if (waiter === undefined) return
      this.#waiting.delete(message.id)
      if (message.error !== undefined) waiter.reject(new Error(`load generator: ${message.error}`))
      else waiter.resolve(message.result)
    })
    this.#child.on('exit', (code) => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error(`load generator exited with ${code}`))
      this.#waiting.clear()
    })
  }

  #call<T> (command: Command): Promise<T> {
    const id = ++this.#next
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      this.#child.send({ id, command })
    })
  }

  open (command: Omit<OpenCommand, 'cmd'>): Promise<OpenResult> { return this.#call({ cmd: 'open', ...command }) }
  prepare (command: Omit<PrepareCommand, 'cmd'>): Promise<void> { return this.#call({ cmd: 'prepare', ...command }) }
  write (command: Omit<WriteCommand, 'cmd'>): Promise<WriteResult> { return this.#call({ cmd: 'write', ...command }) }
  await (command: Omit<AwaitCommand, 'cmd'>): Promise<AwaitResult> { return this.#call({ cmd: 'await', ...command }) }
  send (command: Omit<SendCommand, 'cmd'>): Promise<void> { return this.#call({ cmd: 'send', ...command }) }
  close (): Promise<void> { return this.#call({ cmd: 'close' }) }

  kill (): void {
    this.#child.disconnect()
  }
}

/** Splits `items` into `parts` nearly equal slices. */
export const split = <T>(items: readonly T[], parts: number): T[][] => {
  const slices: T[][] = Array.from({ length: parts }, () => [])
  items.forEach((item, i) => slices[i % parts]!.push(item))
  return slices
}
