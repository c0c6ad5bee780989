/** The orchestrator's side of the load generators: forked processes spoken to over IPC. */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LoadGeneratorProcess } from './ipc.js'
import type { AwaitCommand, AwaitResult, Command, OpenCommand, OpenResult, PrepareCommand, SendCommand, WriteCommand, WriteResult } from './loadgen.js'

const script = join(dirname(fileURLToPath(import.meta.url)), 'loadgen.js')

export class LoadGenerator extends LoadGeneratorProcess<Command> {
  constructor () {
    super(script, 'load generator')
  }

  open (command: Omit<OpenCommand, 'cmd'>): Promise<OpenResult> { return this.call({ cmd: 'open', ...command }) }
  prepare (command: Omit<PrepareCommand, 'cmd'>): Promise<void> { return this.call({ cmd: 'prepare', ...command }) }
  write (command: Omit<WriteCommand, 'cmd'>): Promise<WriteResult> { return this.call({ cmd: 'write', ...command }) }
  await (command: Omit<AwaitCommand, 'cmd'>): Promise<AwaitResult> { return this.call({ cmd: 'await', ...command }) }
  send (command: Omit<SendCommand, 'cmd'>): Promise<void> { return this.call({ cmd: 'send', ...command }) }
  close (): Promise<void> { return this.call({ cmd: 'close' }) }
}

/** Splits `items` into `parts` nearly equal slices. */
export const split = <T>(items: readonly T[], parts: number): T[][] => {
  const slices: T[][] = Array.from({ length: parts }, () => [])
  items.forEach((item, i) => slices[i % parts]!.push(item))
  return slices
}
