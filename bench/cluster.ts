/**
 * Cluster: three instances of a server on one Redis behind the no-affinity proxy, for the project (on
 * Postgres, committing before it broadcasts, Redis Streams between instances) and for Hocuspocus with its
 * Redis extension (pub/sub, nothing stored).
 *
 * - one room: 200 clients; the writers on instance 1, latency probes on instances 2 and 3 (so every
 *   measured delivery crosses instances), everyone else through the proxy, which spreads them over all
 *   three;
 * - 50 rooms of 4: each room's writer on one instance, a probe on each of the two others, the fourth
 *   client through the proxy.
 *
 * At 100, 1,000 and 5,000 updates/s and a burst of 1,000: p50 and p99 from send to arrival at the probes,
 * deliveries lost (clocks a client still lacked at the deadline, over all clients) and deliveries
 * duplicated (clocks a probe received twice).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RoundRobinProxy } from '../scripts/round-robin-proxy.js'
import { dropSchema, uniqueSchema } from '../test/helpers/postgres.js'
import { TempRedis } from '../test/helpers/services.js'
import type { Context } from './context.js'
import { LoadGenerator } from './pool.js'
import { dialectOf, ServerProcess, type ServerKind } from './servers.js'
import { max, median, quantile, type Row } from './stats.js'

const KINDS: readonly ServerKind[] = ['project', 'hocuspocus']
const INSTANCES = 3

interface Cluster {
  readonly kind: ServerKind
  readonly instances: readonly ServerProcess[]
  readonly proxyUrl: string
}

interface Step {
  readonly p50: number
  readonly p99: number
  /** From the first send until the last client held everything. */
  readonly allMs: number
  readonly lost: number
  readonly duplicated: number
  readonly complete: number
  readonly clients: number
}

type Topology = 'one room' | 'rooms'

const startCluster = async (kind: ServerKind, redis: TempRedis, databaseUrl: string, schema: string, dataDir: string): Promise<{ cluster: Cluster, stop: () => Promise<void> }> => {
  const prefix = `bench-${kind}-${schema}`
  const instances = Array.from({ length: INSTANCES }, () => new ServerProcess(kind, kind === 'hocuspocus'
    ? { dataDir, launcher: 'hocuspocus-redis.js', env: { REDIS_PORT: String(redis.port), REDIS_PREFIX: prefix } }
    : { dataDir, env: { DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema, REDIS_URL: redis.url, REDIS_PREFIX: `${prefix}:` } }))
  // One at a time: the first project instance creates the schema.
  for (const instance of instances) await instance.start()
  const proxy = new RoundRobinProxy(instances.map((i) => ({ host: '127.0.0.1', port: i.port })))
  const port = await proxy.listen(0, '127.0.0.1')
  return {
    cluster: { kind, instances, proxyUrl: `ws://127.0.0.1:${port}` },
    stop: async () => {
      await proxy.close()
      await Promise.all(instances.map((i) => i.stop('SIGKILL')))
    },
  }
}

/** Opens the clients of one step; returns how many writers there are. */
const open = async (ctx: Context, cluster: Cluster, gens: LoadGenerator[], topology: Topology, room: string, burst: boolean): Promise<number> => {
  const size = ctx.sizes.cluster
  const dialect = dialectOf(cluster.kind)
  const [writerGen, ...subscriberGens] = gens
  const urls = cluster.instances.map((i) => i.url)
  const failed: number[] = []
  const opened = async (result: Promise<{ failed: number }>): Promise<void> => { failed.push((await result).failed) }
  const common = { dialect, concurrency: 25, timeoutMs: 10_000 }
  if (topology === 'one room') {
    const writers = burst ? 1 : size.writers
    const probes = Math.ceil(size.probes / subscriberGens.length)
    const rest = Math.ceil((size.clients - size.writers - size.probes) / subscriberGens.length)
    await Promise.all(subscriberGens.map(async (gen, g) => {
      // Probes on instances 2 and 3; the writers are on instance 1.
      await opened(gen.open({ ...common, url: urls[1 + (g % 2)]!, rooms: Array(probes).fill(room), track: true, latency: true }))
      await opened(gen.open({ ...common, url: cluster.proxyUrl, rooms: Array(rest).fill(room), track: false }))
    }))
    await opened(writerGen!.open({ ...common, url: urls[0]!, rooms: Array(writers).fill(room), track: false, concurrency: writers, writers: true }))
    if (failed.some((n) => n > 0)) throw new Error(`${failed.reduce((a, b) => a + b, 0)} clients failed to connect`)
    return writers
  }
  const names = Array.from({ length: size.rooms }, (_, r) => `${room}-${r}`)
  await Promise.all(subscriberGens.map(async (gen, g) => {
    const mine = names.filter((_, r) => r % subscriberGens.length === g)
    for (let i = 0; i < INSTANCES; i++) {
      // Room r's writer is on instance r % 3; its probes on the two others.
      const probed = mine.filter((name) => names.indexOf(name) % INSTANCES !== i)
      await opened(gen.open({ ...common, url: urls[i]!, rooms: probed, track: true, latency: true }))
    }
    await opened(gen.open({ ...common, url: cluster.proxyUrl, rooms: mine, track: true }))
  }))
  for (let i = 0; i < INSTANCES; i++) {
    const written = names.filter((_, r) => r % INSTANCES === i)
    await opened(writerGen!.open({ ...common, url: urls[i]!, rooms: written, track: false, writers: true }))
  }
  if (failed.some((n) => n > 0)) throw new Error(`${failed.reduce((a, b) => a + b, 0)} clients failed to connect`)
  return names.length
}

const step = async (ctx: Context, cluster: Cluster, gens: LoadGenerator[], topology: Topology, room: string, rate: number, burst: boolean, warmUp = false): Promise<Step> => {
  const size = ctx.sizes.cluster
  const [writerGen, ...subscriberGens] = gens
  try {
    const writers = await open(ctx, cluster, gens, topology, room, burst)
    const total = burst ? size.burst : warmUp ? Math.ceil(rate) : Math.min(size.maxUpdates, Math.max(size.minUpdates, Math.round(rate * size.seconds)))
    const count = Math.max(1, Math.ceil(total / writers))
    await writerGen!.prepare({ count, chars: 1 })
    const written = await writerGen!.write({ rate, burst })
    // One writer per room in the rooms topology: each room expects its own writer's updates.
    const byRoom = new Map<string, Map<number, number>>()
    const clientRooms = topology === 'one room'
      ? written.writers.map(() => room)
      : written.writers.map((_, w) => `${room}-${writerRoom(w, size.rooms)}`)
    written.writers.forEach((w, i) => {
      const key = clientRooms[i]!
      const want = byRoom.get(key) ?? new Map<number, number>()
      want.set(w.client, w.sends.length)
      byRoom.set(key, want)
    })
    const sends = new Map(written.writers.map((w) => [w.client, w.sends]))
    const results = await Promise.all(subscriberGens.map((gen) => gen.await({ expect: byRoom, sends, timeoutMs: size.timeoutMs })))
    const latencies = Float64Array.from(results.flatMap((r) => [...r.latencies]))
    const firstSend = Math.min(...written.writers.map((w) => w.sends[0]!))
    return {
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      allMs: max(Float64Array.from(results.flatMap((r) => [...r.completeAt]))) - firstSend,
      lost: results.reduce((sum, r) => sum + r.missing, 0),
      duplicated: results.reduce((sum, r) => sum + r.duplicates, 0),
      complete: results.reduce((sum, r) => sum + r.complete, 0),
      clients: results.reduce((sum, r) => sum + r.clients, 0),
    }
  } finally {
    await Promise.all(gens.map((gen) => gen.close()))
  }
}

/**
 * The room of the w-th writer in the order the writer generator opened them: instance by instance,
 * rooms r with r % 3 === instance, in order.
 */
const writerRoom = (w: number, rooms: number): number => {
  const order = Array.from({ length: INSTANCES }, (_, i) => Array.from({ length: rooms }, (_, r) => r).filter((r) => r % INSTANCES === i)).flat()
  return order[w]!
}

export const cluster = async (ctx: Context): Promise<Row[]> => {
  const size = ctx.sizes.cluster
  const kinds = KINDS.filter((k) => ctx.servers.includes(k))
  const rows = new Map<string, { unit: string, values: Map<string, number>, notes: string[] }>()
  const put = (metric: string, unit: string, kind: string, value: number, note = ''): void => {
    const row = rows.get(metric) ?? { unit, values: new Map<string, number>(), notes: [] as string[] }
    row.values.set(kind, value)
    if (note !== '') row.notes.push(`${kind}: ${note}`)
    rows.set(metric, row)
  }
  const redis = await TempRedis.start()
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
  const schema = uniqueSchema('bench_cluster')
  const dataDir = mkdtempSync(join(tmpdir(), 'yjs-relay-bench-cluster-'))
  // Both servers' clusters run side by side and take turns, step by step: the load of a shared machine
  // drifts over minutes, and a server measured all after the other would carry that drift in its ratio.
  const clusters = new Map<ServerKind, { cluster: Cluster, stop: () => Promise<void> }>()
  const gens = Array.from({ length: 1 + size.loadgens }, () => new LoadGenerator())
  try {
    for (const kind of kinds) clusters.set(kind, await startCluster(kind, redis, databaseUrl, schema, dataDir))
    for (const topology of ['one room', 'rooms'] as const) {
      const label = topology === 'one room' ? `1 room × ${size.clients}` : `${size.rooms} rooms × 4`
      const tag = topology === 'one room' ? 'one' : 'rooms'
      for (const [kind, { cluster: running }] of clusters) await step(ctx, running, gens, topology, `${kind}-${tag}-warm-up`, size.rates[0]!, false, true)
      const lost = new Map<ServerKind, number>(kinds.map((k) => [k, 0]))
      const duplicated = new Map<ServerKind, number>(kinds.map((k) => [k, 0]))
      for (const rate of [...size.rates, 'burst' as const]) {
        const burst = rate === 'burst'
        const steps = new Map<ServerKind, Step[]>(kinds.map((k) => [k, []]))
        for (let rep = 0; rep < ctx.repeats; rep++) {
          for (const [kind, { cluster: running }] of clusters) {
            const result = await step(ctx, running, gens, topology, `${kind}-${tag}-${rate}-${rep}`, burst ? 0 : rate, burst)
              .catch((error: Error) => ({ p50: Number.NaN, p99: Number.NaN, allMs: Number.NaN, lost: Number.NaN, duplicated: 0, complete: 0, clients: 0, error: error.message }))
            ctx.log(`cluster ${kind} ${label} ${burst ? `burst of ${size.burst}` : `${rate}/s`} #${rep}: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, all after ${result.allMs.toFixed(0)} ms, ${result.complete}/${result.clients} complete, lost ${result.lost}, duplicated ${result.duplicated}`)
            steps.get(kind)!.push(result)
            lost.set(kind, lost.get(kind)! + result.lost)
            duplicated.set(kind, duplicated.get(kind)! + result.duplicated)
          }
        }
        for (const [kind, done] of steps) {
          const incomplete = done.filter((s) => s.complete < s.clients || !Number.isFinite(s.lost))
          const note = incomplete.length > 0 ? `${incomplete.length}/${done.length} runs incomplete` : ''
          if (burst) {
            put(`${label}: burst of ${size.burst}, until all hold it`, 'ms', kind, median(done.map((s) => s.allMs)), note)
            put(`${label}: burst of ${size.burst}, p99`, 'ms', kind, median(done.map((s) => s.p99)))
          } else {
            put(`${label}: p99 at ${rate}/s`, 'ms', kind, median(done.map((s) => s.p99)), note)
            put(`${label}: p50 at ${rate}/s`, 'ms', kind, median(done.map((s) => s.p50)))
          }
        }
      }
      for (const kind of kinds) {
        put(`${label}: deliveries lost, all steps`, 'count', kind, lost.get(kind)!)
        put(`${label}: deliveries duplicated at probes, all steps`, 'count', kind, duplicated.get(kind)!)
      }
    }
  } finally {
    for (const gen of gens) gen.kill()
    for (const { stop } of clusters.values()) await stop()
    await redis.stop()
    await dropSchema(schema, databaseUrl).catch(() => {})
    rmSync(dataDir, { recursive: true, force: true })
  }
  return [...rows].map(([metric, row]) => ({ scenario: 'cluster', metric, unit: row.unit, values: row.values, note: row.notes.join('; ') }))
}
