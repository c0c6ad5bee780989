/**
 * `npm run bench [-- scenario ...] [--quick|--tiny] [--repeats N] [--servers a,b] [--rates 100,1000] [--seconds S]`
 *
 * Starts each server in its own process, drives it from forked load generators, checks convergence in
 * every scenario and prints a Markdown table of medians over repeats, with the project's ratio to each
 * peer. Scenarios: fanout, rooms, storm, bigdoc, presence (all by default), and cluster (three
 * instances of the project and of Hocuspocus on Redis, behind a no-affinity proxy; needs Postgres on
 * 127.0.0.1:5432 or BENCH_DATABASE_URL, and redis-server on the PATH).
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bigdoc } from './bigdoc.js'
import { cluster } from './cluster.js'
import { FULL, TINY, type Context, type Scenario, type Sizes } from './context.js'
import { fanout } from './fanout.js'
import { presence } from './presence.js'
import { rooms } from './rooms.js'
import { SERVER_KINDS, type ServerKind } from './servers.js'
import { table, type Row } from './stats.js'
import { storm } from './storm.js'

export const SCENARIOS: Record<string, Scenario> = { fanout, rooms, storm, bigdoc, presence, cluster }

/** What `npm run bench` runs without naming scenarios; `cluster` needs Redis and Postgres, so it is asked for by name. */
const DEFAULT_SCENARIOS = ['fanout', 'rooms', 'storm', 'bigdoc', 'presence']

export interface BenchOptions {
  readonly scenarios: readonly string[]
  readonly servers: readonly ServerKind[]
  readonly repeats: number
  readonly sizes: Sizes
  readonly log?: (line: string) => void
}

export const runBench = async (options: BenchOptions): Promise<Row[]> => {
  const ctx: Context = { servers: options.servers, repeats: options.repeats, sizes: options.sizes, log: options.log ?? (() => {}) }
  const rows: Row[] = []
  for (const name of options.scenarios) {
    const scenario = SCENARIOS[name]
    if (scenario === undefined) throw new RangeError(`unknown scenario "${name}"; known: ${Object.keys(SCENARIOS).join(', ')}`)
    rows.push(...await scenario(ctx))
  }
  return rows
}

const parseArgs = (argv: readonly string[]): BenchOptions => {
  const scenarios: string[] = []
  let servers: ServerKind[] = [...SERVER_KINDS]
  let repeats = 3
  let sizes = FULL
  let rates: number[] | null = null
  let seconds: number | null = null
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--tiny' || arg === '--quick') sizes = TINY
    else if (arg === '--repeats') repeats = Number(argv[++i])
    else if (arg === '--servers') servers = argv[++i]!.split(',') as ServerKind[]
    else if (arg === '--rates') rates = argv[++i]!.split(',').map(Number)
    else if (arg === '--seconds') seconds = Number(argv[++i])
    else if (arg.startsWith('--')) throw new RangeError(`unknown option ${arg}`)
    else scenarios.push(arg)
  }
  for (const kind of servers) if (!SERVER_KINDS.includes(kind)) throw new RangeError(`unknown server "${kind}"; known: ${SERVER_KINDS.join(', ')}`)
  if (!Number.isInteger(repeats) || repeats < 1) throw new RangeError('--repeats must be a whole number >= 1')
  if (rates !== null) {
    if (rates.length === 0 || !rates.every((rate) => Number.isFinite(rate) && rate > 0)) throw new RangeError('--rates must be positive numbers separated by commas')
    sizes = { ...sizes, fanout: { ...sizes.fanout, rates }, cluster: { ...sizes.cluster, rates } }
  }
  if (seconds !== null) {
    if (!Number.isFinite(seconds) || seconds <= 0) throw new RangeError('--seconds must be a positive number')
    // Every rate of the sweep sends that long: the cap on updates a step rises with it.
    const maxUpdates = Math.max(sizes.fanout.maxUpdates, Math.ceil(Math.max(...sizes.fanout.rates) * seconds))
    sizes = { ...sizes, fanout: { ...sizes.fanout, seconds, maxUpdates } }
  }
  return { scenarios: scenarios.length > 0 ? scenarios : DEFAULT_SCENARIOS, servers, repeats, sizes }
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)
if (isMain) {
  const options = parseArgs(process.argv.slice(2))
  const started = Date.now()
  const rows = await runBench({ ...options, log: (line) => process.stderr.write(`${line}\n`) })
  process.stdout.write(`\n${table(rows, options.servers)}\n\n${options.repeats} repeat(s), medians; ${((Date.now() - started) / 1000).toFixed(0)} s; ${new Date().toISOString()}\n`)
  process.exit(0)
}
