/** What every scenario receives: the servers to compare, the sizes, and somewhere to keep data. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LoadGenerator } from './pool.js'
import { ServerProcess, type ServerKind, type ServerOptions } from './servers.js'
import type { Row } from './stats.js'

export interface Sizes {
  readonly fanout: {
    readonly subscribers: number
    readonly probes: number
    readonly writers: number
    readonly rates: readonly number[]
    readonly seconds: number
    /**
     * Updates per step at least: a low rate sends for longer than `seconds`, so that its p99 is a
     * percentile of enough updates (at 100/s, 2 s are 200 updates: p99 would be the two slowest).
     */
    readonly minUpdates: number
    /** Updates per step at most, so that a sweep step stays short at high rates. */
    readonly maxUpdates: number
    readonly burst: number
    /** Offered rate of the saturation step: throughput is what gets through. */
    readonly saturationRate: number
    readonly loadgens: number
    readonly timeoutMs: number
  }
  readonly rooms: {
    readonly rooms: number
    readonly clientsPerRoom: number
    readonly loadgens: number
    /** Idle time before the baseline and before the settled reading: long enough for V8's memory reducer (14-16 s on Node 20). */
    readonly settledMs: number
  }
  readonly storm: { readonly rooms: number, readonly clients: number, readonly docBytes: number, readonly loadgens: number }
  readonly bigdoc: { readonly joins: number, readonly editsPerUpdate: number, readonly maxEdits: number }
  /** Three instances behind the no-affinity proxy (bench/cluster.ts). */
  readonly cluster: {
    /** Clients of the one-room topology, writers and probes included. */
    readonly clients: number
    readonly writers: number
    /** Latency probes of the one-room topology, on the instances without writers. */
    readonly probes: number
    /** Rooms of the rooms topology, 4 clients each. */
    readonly rooms: number
    readonly rates: readonly number[]
    readonly seconds: number
    readonly minUpdates: number
    readonly maxUpdates: number
    readonly burst: number
    /** Subscriber load generators (one more writes). */
    readonly loadgens: number
    readonly timeoutMs: number
  }
  readonly presence: {
    /** Room sizes: one room of each, every client moving its cursor `hz` times a second. */
    readonly clients: readonly number[]
    readonly hz: number
    /** Clients per load generator that record arrival times. */
    readonly probes: number
    readonly loadgens: number
    readonly warmupMs: number
    readonly measureMs: number
  }
}

export const FULL: Sizes = {
  fanout: { subscribers: 200, probes: 20, writers: 4, rates: [100, 1000, 2000, 5000, 10_000], seconds: 2, minUpdates: 2000, maxUpdates: 15_000, burst: 1000, saturationRate: 20_000, loadgens: 2, timeoutMs: 20_000 },
  rooms: { rooms: 1000, clientsPerRoom: 2, loadgens: 2, settledMs: 20_000 },
  storm: { rooms: 50, clients: 2000, docBytes: 50_000, loadgens: 4 },
  bigdoc: { joins: 20, editsPerUpdate: 1000, maxEdits: Number.POSITIVE_INFINITY },
  cluster: { clients: 200, writers: 4, probes: 20, rooms: 50, rates: [100, 1000, 5000], seconds: 3, minUpdates: 600, maxUpdates: 15_000, burst: 1000, loadgens: 2, timeoutMs: 30_000 },
  presence: { clients: [50, 100, 200], hz: 5, probes: 10, loadgens: 2, warmupMs: 5000, measureMs: 15_000 },
}

/** Small enough for a smoke test: proves the harness, measures nothing. */
export const TINY: Sizes = {
  fanout: { subscribers: 6, probes: 2, writers: 2, rates: [100], seconds: 0.5, minUpdates: 0, maxUpdates: 100, burst: 50, saturationRate: 500, loadgens: 1, timeoutMs: 10_000 },
  rooms: { rooms: 10, clientsPerRoom: 2, loadgens: 1, settledMs: 2_500 },
  storm: { rooms: 3, clients: 12, docBytes: 2_000, loadgens: 1 },
  bigdoc: { joins: 2, editsPerUpdate: 1000, maxEdits: 5000 },
  cluster: { clients: 12, writers: 2, probes: 2, rooms: 3, rates: [100], seconds: 0.5, minUpdates: 0, maxUpdates: 100, burst: 50, loadgens: 2, timeoutMs: 10_000 },
  presence: { clients: [6], hz: 5, probes: 2, loadgens: 1, warmupMs: 500, measureMs: 1500 },
}

export interface Context {
  readonly servers: readonly ServerKind[]
  readonly repeats: number
  readonly sizes: Sizes
  readonly log: (line: string) => void
}

export type Scenario = (ctx: Context) => Promise<Row[]>

/** Runs `body` with a fresh server of `kind` on a fresh data folder and `loadgens` load generators. */
export const withServer = async <T>(
  kind: ServerKind,
  options: Omit<ServerOptions, 'dataDir'>,
  loadgens: number,
  body: (server: ServerProcess, gens: LoadGenerator[]) => Promise<T>,
): Promise<T> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'yjs-relay-bench-'))
  const server = new ServerProcess(kind, { ...options, dataDir })
  const gens = Array.from({ length: loadgens }, () => new LoadGenerator())
  try {
    await server.start()
    return await body(server, gens)
  } finally {
    for (const gen of gens) gen.kill()
    // A graceful stop lets a profiled server write its profile.
    await server.stop(process.env.BENCH_CPU_PROF === undefined ? 'SIGKILL' : 'SIGTERM')
    rmSync(dataDir, { recursive: true, force: true })
  }
}
