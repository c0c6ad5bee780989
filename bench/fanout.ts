/**
 * Fan-out: one room, many subscribers, a few writers sending real Yjs text inserts.
 *
 * - sweep: at each rate the writers send for a few seconds, and at low rates for as long as it takes to
 *   send a couple of thousand updates; every subscriber must end up holding every update (convergence),
 *   and the probes' latency (send to arrival, per update) gives p50 and p99.
 * - burst: one writer sends N updates back to back; the time until the last subscriber holds them all.
 * - saturation: writers offer more than any server delivers; throughput is updates over the time until
 *   the last subscriber holds them all (goal 6 compares the project with and without storage).
 */
import type { Context } from './context.js'
import { withServer } from './context.js'
import type { LoadGenerator } from './pool.js'
import { dialectOf, type ServerKind, type ServerProcess } from './servers.js'
import { max, median, quantile, type Row } from './stats.js'

interface Step {
  readonly converged: boolean
  readonly p50: number
  readonly p99: number
  /** From the first send to the moment the last subscriber held everything. */
  readonly allMs: number
  readonly updates: number
  /** Server CPU time per update over the step, sends and convergence included. */
  readonly cpuUs: number
  readonly note: string
}

/** A sweep step sends at `rate` for `seconds` (at least `minUpdates`); a warm-up for `seconds` only; a burst back to back. */
type StepKind = 'sweep' | 'warm-up' | 'burst'

/** Runs one step; a server that failed it (backlog, dropped sockets) is replaced by a fresh one. */
const step = async (ctx: Context, server: ServerProcess, gens: LoadGenerator[], room: string, rate: number, kind: StepKind): Promise<Step> => {
  let result: Step
  try {
    result = await attempt(ctx, server, gens, room, rate, kind)
  } catch (error) {
    result = { ...FAILED, note: (error as Error).message }
  }
  if (!result.converged) {
    await server.stop('SIGKILL')
    await server.start()
  }
  return result
}

const attempt = async (ctx: Context, server: ServerProcess, gens: LoadGenerator[], room: string, rate: number, kind: StepKind): Promise<Step> => {
  const size = ctx.sizes.fanout
  const burst = kind === 'burst'
  const dialect = dialectOf(server.kind)
  const subscriberGens = gens.slice(1)
  const writerGen = gens[0]!
  const per = Math.ceil(size.subscribers / subscriberGens.length)
  const probesPer = Math.ceil(size.probes / subscriberGens.length)
  try {
    await Promise.all(subscriberGens.map(async (gen) => {
      const probes = await gen.open({ url: server.url, dialect, rooms: Array(probesPer).fill(room), track: true, latency: true, concurrency: 25, timeoutMs: 10_000 })
      const rest = await gen.open({ url: server.url, dialect, rooms: Array(per - probesPer).fill(room), track: false, concurrency: 25, timeoutMs: 10_000 })
      if (probes.failed + rest.failed > 0) throw new Error(`${probes.failed + rest.failed} subscribers failed to connect`)
    }))
    const writers = burst ? 1 : size.writers
    const opened = await writerGen.open({ url: server.url, dialect, rooms: Array(writers).fill(room), track: false, concurrency: writers, timeoutMs: 10_000, writers: true })
    if (opened.failed > 0) throw new Error('a writer failed to connect')
    const timed = Math.round(rate * size.seconds)
    const total = burst ? size.burst : Math.max(writers, Math.min(size.maxUpdates, kind === 'sweep' ? Math.max(size.minUpdates, timed) : timed))
    const count = Math.ceil(total / writers)
    await writerGen.prepare({ count, chars: 1 })
    const cpu0 = server.cpuMs()
    const written = await writerGen.write({ rate, burst })
    const expect = new Map([[room, new Map(written.writers.map((w) => [w.client, w.sends.length]))]])
    const sends = new Map(written.writers.map((w) => [w.client, w.sends]))
    const results = await Promise.all(subscriberGens.map((gen) => gen.await({ expect, sends, timeoutMs: size.timeoutMs, textChecks: 2 })))
    const cpuUs = ((server.cpuMs() - cpu0) * 1000) / (count * writers)
    const clients = results.reduce((sum, r) => sum + r.clients, 0)
    const complete = results.reduce((sum, r) => sum + r.complete, 0)
    const texts = results.flatMap((r) => r.texts)
    const sameText = texts.every((t) => t.sha1 === texts[0]!.sha1 && t.length === count * writers)
    const latencies = Float64Array.from(results.flatMap((r) => [...r.latencies]))
    const firstSend = Math.min(...written.writers.map((w) => w.sends[0]!))
    const lastArrival = max(Float64Array.from(results.flatMap((r) => [...r.completeAt])))
    const converged = complete === clients && sameText
    return {
      converged,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      allMs: lastArrival - firstSend,
      updates: count * writers,
      cpuUs,
      note: converged ? '' : `${complete}/${clients} converged${sameText ? '' : ', texts differ'}`,
    }
  } finally {
    await Promise.all(gens.map((gen) => gen.close()))
  }
}

const FAILED: Step = { converged: false, p50: Number.NaN, p99: Number.NaN, allMs: Number.NaN, updates: 0, cpuUs: Number.NaN, note: '' }
const SKIPPED: Step = { ...FAILED, note: 'skipped: failed at a lower rate' }

export const fanout = async (ctx: Context): Promise<Row[]> => {
  const size = ctx.sizes.fanout
  const p99 = new Map<number, Map<string, number>>()
  const p50 = new Map<number, Map<string, number>>()
  const cpu = new Map<number, Map<string, number>>()
  const notes = new Map<string, string[]>()
  const burst = new Map<string, number>()
  const throughput = new Map<string, number>()
  const note = (key: string, text: string): void => {
    if (text !== '') notes.set(key, [...(notes.get(key) ?? []), text])
  }
  for (const kind of ctx.servers) {
    await withServer(kind, {}, 1 + size.loadgens, async (server, gens) => {
      // Warm-up (not measured): a freshly started server compiles its hot path on the first updates.
      await step(ctx, server, gens, 'warm-up', size.rates[0]!, 'warm-up')
      let failedBelow = false
      for (const rate of size.rates) {
        const steps: Step[] = []
        for (let rep = 0; rep < ctx.repeats; rep++) {
          const result = failedBelow ? SKIPPED : await step(ctx, server, gens, `fanout-${rate}-${rep}`, rate, 'sweep')
          ctx.log(`fanout ${kind} ${rate}/s #${rep}: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, server CPU ${result.cpuUs.toFixed(0)} µs/update${result.converged ? '' : ` NOT CONVERGED ${result.note}`}`)
          steps.push(result)
        }
        const ok = steps.every((s) => s.converged)
        if (!ok) { failedBelow = true; note(`rate ${rate}`, `${kind}: ${steps.find((s) => !s.converged)!.note}`) }
        setIn(p99, rate, kind, ok ? median(steps.map((s) => s.p99)) : Number.NaN)
        setIn(p50, rate, kind, ok ? median(steps.map((s) => s.p50)) : Number.NaN)
        setIn(cpu, rate, kind, ok ? median(steps.map((s) => s.cpuUs)) : Number.NaN)
      }
      const bursts: Step[] = []
      for (let rep = 0; rep < ctx.repeats; rep++) {
        const result = await step(ctx, server, gens, `burst-${rep}`, 0, 'burst')
        ctx.log(`burst ${kind} #${rep}: all subscribers after ${result.allMs.toFixed(1)} ms${result.converged ? '' : ` NOT CONVERGED ${result.note}`}`)
        bursts.push(result)
      }
      burst.set(kind, bursts.every((s) => s.converged) ? median(bursts.map((s) => s.allMs)) : Number.NaN)
      if (!bursts.every((s) => s.converged)) note('burst', `${kind}: ${bursts.find((s) => !s.converged)!.note}`)
      const saturation: Step[] = []
      for (let rep = 0; rep < ctx.repeats; rep++) {
        const result = await step(ctx, server, gens, `saturation-${rep}`, size.saturationRate, 'sweep')
        ctx.log(`saturation ${kind} #${rep}: ${result.updates} updates in ${result.allMs.toFixed(0)} ms${result.converged ? '' : ` NOT CONVERGED ${result.note}`}`)
        saturation.push(result)
      }
      const ok = saturation.every((s) => s.converged)
      throughput.set(kind, ok ? median(saturation.map((s) => (s.updates * 1000) / s.allMs)) : Number.NaN)
      if (!ok) note('saturation', `${kind}: ${saturation.find((s) => !s.converged)!.note}`)
    })
  }
  const rows: Row[] = []
  for (const rate of size.rates) {
    rows.push({ scenario: 'fanout', metric: `p99 latency at ${rate}/s`, unit: 'ms', values: p99.get(rate)!, note: notes.get(`rate ${rate}`)?.join('; ') })
    rows.push({ scenario: 'fanout', metric: `p50 latency at ${rate}/s`, unit: 'ms', values: p50.get(rate)! })
    rows.push({ scenario: 'fanout', metric: `server CPU per update at ${rate}/s`, unit: 'µs', values: cpu.get(rate)! })
  }
  rows.push({ scenario: 'fanout', metric: `burst of ${size.burst} to all ${size.subscribers}`, unit: 'ms', values: burst, note: notes.get('burst')?.join('; ') })
  rows.push({ scenario: 'fanout', metric: `throughput offered ${size.saturationRate}/s`, unit: 'updates/s', higherIsBetter: true, values: throughput, note: notes.get('saturation')?.join('; ') })
  return rows
}

const setIn = (map: Map<number, Map<string, number>>, key: number, kind: ServerKind, value: number): void => {
  let inner = map.get(key)
  if (inner === undefined) map.set(key, inner = new Map())
  inner.set(kind, value)
}
