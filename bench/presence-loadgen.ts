/**
 * A load-generator process for the presence scenario (forked; never the server's process): holds
 * presence clients, moves their cursors at a rate, and reports frames, latencies and closes over IPC,
 * with its own CPU time and event-loop delay: a probe's arrival is stamped only when its process gets to
 * the frame, so a busy load generator adds its own delay to what is measured.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { sleep } from './clock.js'
import { serveCommands } from './ipc.js'
import { PresenceClient } from './presence-client.js'
import type { Dialect } from './wire.js'

export type PresenceCommand =
  | { readonly cmd: 'open', readonly url: string, readonly dialect: Dialect, readonly room: string, readonly count: number, readonly probes: number, readonly timeoutMs: number }
  | { readonly cmd: 'move', readonly hz: number }
  | { readonly cmd: 'measure' }
  | { readonly cmd: 'close' }

export interface PresenceReport {
  readonly clients: number
  readonly framesIn: number
  readonly framesOut: number
  readonly latencies: number[]
  /** Close codes of clients the server closed. */
  readonly closes: number[]
  /** This process's event-loop delay, p99 and largest, ms (what a frame may wait before it is read). */
  readonly loopDelayP99: number
  readonly loopDelayMax: number
}

const clients: PresenceClient[] = []
let timers: NodeJS.Timeout[] = []
const loopDelay = monitorEventLoopDelay({ resolution: 5 })
loopDelay.enable()

const open = async ({ url, dialect, room, count, probes, timeoutMs }: Extract<PresenceCommand, { cmd: 'open' }>): Promise<number> => {
  const opened = Array.from({ length: count }, (_, i) => new PresenceClient({ url, dialect, room, probe: i < probes }))
  clients.push(...opened)
  const results = await Promise.all(opened.map((client) => Promise.race([client.opened.then(() => true, () => false), sleep(timeoutMs).then(() => false)])))
  return results.filter((ok) => !ok).length
}

/** Each client moves `hz` times a second, the clients' moves spread evenly over the period. */
const move = ({ hz }: { hz: number }): void => {
  const period = 1000 / hz
  timers = clients.map((client, i) => setTimeout(() => {
    client.move()
    timers[i] = setInterval(() => client.move(), period)
  }, (i * period) / clients.length))
}

/** Counters since the last measure, then reset. */
const measure = (): PresenceReport => {
  const report: PresenceReport = {
    clients: clients.length,
    framesIn: clients.reduce((sum, c) => sum + c.framesIn, 0),
    framesOut: clients.reduce((sum, c) => sum + c.framesOut, 0),
    latencies: clients.flatMap((c) => c.latencies),
    closes: clients.flatMap((c) => c.closeCode === null ? [] : [c.closeCode]),
    loopDelayP99: loopDelay.percentile(99) / 1e6,
    loopDelayMax: loopDelay.max / 1e6,
  }
  for (const client of clients) { client.framesIn = 0; client.framesOut = 0; client.latencies = [] }
  loopDelay.reset()
  return report
}

const close = async (): Promise<void> => {
  for (const timer of timers) { clearTimeout(timer); clearInterval(timer) }
  timers = []
  await Promise.all(clients.splice(0).map((client) => client.close()))
}

const handle = async (command: PresenceCommand): Promise<unknown> => {
  switch (command.cmd) {
    case 'open': return open(command)
    case 'move': return move(command)
    case 'measure': return measure()
    case 'close': return close()
  }
}

serveCommands(handle)
