/**
 * Presence: one room of N clients, each moving its cursor `hz` times a second, on the server's default
 * message limits. Each server gets its own stock provider's behaviour (see presence-client.ts): stock
 * y-websocket clients send back every awareness change they receive, Hocuspocus's do not. Measured over
 * a window after a warm-up: the server's CPU (in cores), the awareness frames a client receives and
 * sends a second, p50 and p99 from a cursor move to its arrival at the probes, and clients the server
 * closed (any is a failure: a stock client closed with 4429 is gone for good).
 *
 * The load generators are part of what is measured: a probe's arrival is stamped when its process reads
 * the frame, after the frames of the clients read before it in the same turn, and every client of a
 * process gets each of the room's frames at the same moment. Each process therefore holds at most
 * CLIENTS_PER_LOADGEN clients, and reports its event-loop delay: when that approaches the latencies, the
 * load generators measured themselves. The machine's load average and CPU pressure are logged with each
 * run, since the figures mean little without them on a shared machine.
 */
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sleep } from './clock.js'
import { withServer, type Context } from './context.js'
import { LoadGeneratorProcess } from './ipc.js'
import type { PresenceCommand, PresenceReport } from './presence-loadgen.js'
import { dialectOf, type ServerKind } from './servers.js'
import { median, quantile, type Row } from './stats.js'

const script = join(dirname(fileURLToPath(import.meta.url)), 'presence-loadgen.js')

/**
 * Clients one load generator holds at most. Two processes of 100 clients each (the first runs) spent
 * 5-10 ms on each of the room's frames (100 parses and echoes) and showed event-loop delays of 100+ ms at
 * p99 on the loaded 2-core machine; the same rooms' p99 fell from 600-680 ms to 70-210 ms with four.
 */
const CLIENTS_PER_LOADGEN = 50

/** The share of the last 60 s in which some task waited for a CPU (Linux PSI), or NaN where not available. */
const cpuPressure = (): number => {
  try {
    const match = /^some avg10=[\d.]+ avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))
    return match === null ? Number.NaN : Number(match[1])
  } catch {
    return Number.NaN
  }
}

interface Run {
  readonly cores: number
  readonly framesIn: number
  readonly framesOut: number
  readonly p50: number
  readonly p99: number
  readonly closed: number
  readonly samples: number
  /** The load generators' event-loop delay at p99, the largest over the processes, ms. */
  readonly loadgenDelay: number
}

export const presence = async (ctx: Context): Promise<Row[]> => {
  const size = ctx.sizes.presence
  const results = new Map<number, Map<ServerKind, Run[]>>()
  // The project without storage relays awareness exactly as the project does: nothing to tell apart.
  for (const kind of ctx.servers.filter((k) => k !== 'project-memory')) {
    for (const clients of size.clients) {
      for (let rep = 0; rep < ctx.repeats; rep++) {
        const run = await withServer(kind, { defaultLimits: true }, 0, async (server) => {
          const count = Math.max(size.loadgens, Math.ceil(clients / CLIENTS_PER_LOADGEN))
          const gens = Array.from({ length: count }, () => new LoadGeneratorProcess<PresenceCommand>(script, 'presence load generator'))
          try {
            const room = `presence-${clients}-${rep}`
            const per = Math.ceil(clients / gens.length)
            // As many probes in all however many processes hold the clients.
            const probes = Math.ceil((size.probes * size.loadgens) / gens.length)
            const failed = await Promise.all(gens.map((gen, i) => gen.call<number>({
              cmd: 'open', url: server.url, dialect: dialectOf(kind), room, count: Math.min(per, clients - i * per), probes, timeoutMs: 20_000,
            })))
            if (failed.some((n) => n > 0)) throw new Error(`${failed.reduce((a, b) => a + b, 0)} clients failed to connect`)
            await Promise.all(gens.map((gen) => gen.call({ cmd: 'move', hz: size.hz })))
            await sleep(size.warmupMs)
            await Promise.all(gens.map((gen) => gen.call({ cmd: 'measure' })))
            const cpu0 = server.cpuMs()
            const gens0 = gens.map((gen) => gen.cpuMs())
            const started = Date.now()
            await sleep(size.measureMs)
            const reports = await Promise.all(gens.map((gen) => gen.call<PresenceReport>({ cmd: 'measure' })))
            const seconds = (Date.now() - started) / 1000
            const cores = (server.cpuMs() - cpu0) / 1000 / seconds
            const genCores = gens.map((gen, i) => (gen.cpuMs() - gens0[i]!) / 1000 / seconds)
            const latencies = Float64Array.from(reports.flatMap((r) => r.latencies))
            const result: Run = {
              cores,
              framesIn: reports.reduce((sum, r) => sum + r.framesIn, 0) / clients / seconds,
              framesOut: reports.reduce((sum, r) => sum + r.framesOut, 0) / clients / seconds,
              p50: quantile(latencies, 0.5),
              p99: quantile(latencies, 0.99),
              closed: reports.reduce((sum, r) => sum + r.closes.length, 0),
              samples: latencies.length,
              loadgenDelay: Math.max(...reports.map((r) => r.loopDelayP99)),
            }
            const codes = [...new Set(reports.flatMap((r) => r.closes))].join(', ')
            ctx.log(`presence ${kind} ${clients} clients at ${size.hz} Hz #${rep}: server ${cores.toFixed(2)} cores, ` +
              `${result.framesIn.toFixed(1)} frames/s in and ${result.framesOut.toFixed(1)} out per client, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms ` +
              `(${result.samples} arrivals), ${result.closed} closed${codes === '' ? '' : ` (${codes})`}; ` +
              `${gens.length} load generators: ${genCores.map((c) => c.toFixed(2)).join(' + ')} cores, event-loop delay p99 ` +
              `${reports.map((r) => r.loopDelayP99.toFixed(0)).join(', ')} ms (max ${Math.max(...reports.map((r) => r.loopDelayMax)).toFixed(0)}); ` +
              `machine load average ${loadavg()[0]!.toFixed(1)}, CPU pressure ${cpuPressure().toFixed(0)} %`)
            await Promise.all(gens.map((gen) => gen.call({ cmd: 'close' })))
            return result
          } finally {
            for (const gen of gens) gen.kill()
          }
        })
        let byKind = results.get(clients)
        if (byKind === undefined) results.set(clients, byKind = new Map())
        byKind.set(kind, [...(byKind.get(kind) ?? []), run])
      }
    }
  }
  const rows: Row[] = []
  for (const [clients, byKind] of results) {
    const label = `${clients} clients at ${size.hz} Hz`
    const value = (pick: (run: Run) => number): Map<string, number> =>
      new Map([...byKind].map(([kind, runs]) => [kind, runs.every((r) => r.closed === 0 && r.samples > 0) ? median(runs.map(pick)) : Number.NaN]))
    const failed = [...byKind].filter(([, runs]) => runs.some((r) => r.closed > 0 || r.samples === 0))
      .map(([kind, runs]) => `${kind}: ${Math.max(...runs.map((r) => r.closed))} of ${clients} clients closed`).join('; ')
    rows.push({ scenario: 'presence', metric: `p99 cursor move to arrival, ${label}`, unit: 'ms', values: value((r) => r.p99), note: failed })
    rows.push({ scenario: 'presence', metric: `p50 cursor move to arrival, ${label}`, unit: 'ms', values: value((r) => r.p50) })
    rows.push({ scenario: 'presence', metric: `server CPU, ${label}`, unit: 'cores', values: value((r) => r.cores) })
    rows.push({ scenario: 'presence', metric: `awareness frames received per client, ${label}`, unit: '/s', values: value((r) => r.framesIn) })
    rows.push({ scenario: 'presence', metric: `frames sent per client (moves and echoes), ${label}`, unit: '/s', values: value((r) => r.framesOut) })
    rows.push({ scenario: 'presence', metric: `load generators' event-loop delay p99 (the bench's own share), ${label}`, unit: 'ms', values: value((r) => r.loadgenDelay) })
  }
  return rows
}
