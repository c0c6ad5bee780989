/**
 * The fuzz scenario shared by the test suite and `npm run fuzz`: the real server as a child process on
 * SQLite, three stock clients editing one room while the fuzzer sends mutated frames to the same room.
 * It measures the server's peak memory, checks that the process lived, that the clients converged with
 * every edit of theirs, that a late joiner gets what they hold, and that the stored document loads, the
 * same, after a kill -9 and a restart.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait.js'
import { runFuzz, type FuzzReport } from './fuzz.js'
import { runPollFuzz, type PollFuzzReport } from './poll-fuzz.js'

export interface ScenarioOptions {
  readonly seed: number
  readonly frames: number
  readonly durationMs?: number
  readonly connections: number
  /** Long-poll sends of many frames each, made while the sockets fuzz. Default 0. */
  readonly pollSends?: number
  readonly progress?: (line: string) => void
}

export interface ScenarioReport {
  readonly fuzz: FuzzReport
  readonly poll: PollFuzzReport | null
  /** Peak resident memory of the server process, sampled every 250 ms. */
  readonly peakRssMb: number
  readonly startRssMb: number
  /** The server was alive and answered /healthz after the fuzzing. */
  readonly alive: boolean
  /** Edits the well-behaved clients made, and whether each client ended with all of them. */
  readonly edits: number
  readonly convergedLength: number
  /** A fresh client after kill -9 and restart got exactly what the connected clients held. */
  readonly reloaded: boolean
  /** A late joiner to the live server got exactly what the connected clients held. */
  readonly roundTrips: boolean
  /** How deep the restarted server's document nests types, and how many subdocuments it holds. */
  readonly maxDepth: number
  readonly subdocuments: number
  /** Log lines of level error (uncaught exceptions, internal errors). */
  readonly errors: ReadonlyArray<Record<string, unknown>>
}

const rssMb = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /VmRSS:\s+(\d+) kB/.exec(status)
  return match === null ? 0 : Number(match[1]) / 1024
}

const ROOM = 'fuzz-room'

/** The deepest level a document nests shared types to (a root type is level 1), without recursion. */
const nestingDepth = (doc: Y.Doc): number => {
  let deepest = 0
  const stack: Array<[Pick<Y.AbstractType<unknown>, '_start' | '_map'>, number]> = [...doc.share.values()].map((type) => [type, 1])
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [type, level] = next
    deepest = Math.max(deepest, level)
    const visit = (item: Y.Item | null, step: (item: Y.Item) => Y.Item | null): void => {
      for (; item !== null; item = step(item)) if (!item.deleted && item.content instanceof Y.ContentType) stack.push([item.content.type, level + 1])
    }
    visit(type._start, (item) => item.right)
    for (const last of type._map.values()) visit(last, (item) => item.left)
  }
  return deepest
}

const canonicalJson = (value: unknown): string => JSON.stringify(value, (_key, field: unknown) =>
  field !== null && typeof field === 'object' && !Array.isArray(field) && !ArrayBuffer.isView(field)
    ? Object.fromEntries(Object.entries(field).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
    : field)

export const runScenario = async (options: ScenarioOptions): Promise<ScenarioReport> => {
  const dir = await mkdtemp(join(tmpdir(), 'yjs-relay-fuzz-'))
  const env = {
    DATA_DIR: dir,
    // The fuzzer is one client sending as fast as it can: rate limits would only slow it down.
    MAX_MESSAGES_PER_SECOND: '10000000',
    MESSAGE_BURST: '10000000',
    MAX_POLL_REQUESTS_PER_SECOND: '10000000',
    LOG_LEVEL: 'info',
  }
  const clients: Client[] = []
  let server: ServerProcess | null = null
  let writer: NodeJS.Timeout | null = null
  let sampler: NodeJS.Timeout | null = null
  try {
    server = await startServerProcess(env)
    const pid = server.child.pid!
    const startRssMb = rssMb(pid)
    let peakRssMb = startRssMb
    sampler = setInterval(() => { try { peakRssMb = Math.max(peakRssMb, rssMb(pid)) } catch {} }, 250)
    for (let i = 0; i < 3; i++) clients.push(connectClient(server.url, ROOM))
    await Promise.all(clients.map((c) => synced(c, 20_000)))
    const rng = prng.create(options.seed)
    const markers: string[] = []
    writer = setInterval(() => {
      const i = prng.int32(rng, 0, clients.length - 1)
      const client = clients[i]!
      if (!client.provider.synced) return
      const marker = `[c${i}:${markers.length}]`
      markers.push(marker)
      // Each marker is one array element, which nothing can split; the text gets edits anywhere.
      client.doc.transact(() => {
        const edits = client.doc.getArray<string>('edits')
        edits.insert(prng.int32(rng, 0, edits.length), [marker])
        client.text.insert(prng.int32(rng, 0, client.text.length), marker)
      })
    }, 50)
    const polling = (options.pollSends ?? 0) > 0
      ? runPollFuzz({ http: server.http, room: ROOM, seed: options.seed, sends: options.pollSends! })
      : Promise.resolve(null)
    const fuzz = await runFuzz({
      url: server.url,
      room: ROOM,
      seed: options.seed,
      frames: options.frames,
      connections: options.connections,
      ...(options.durationMs === undefined ? {} : { durationMs: options.durationMs }),
      progress: (sent) => { if (sent % 10_000 < 1000) options.progress?.(`sent ${sent} frames, peak RSS ${peakRssMb.toFixed(0)} MB`) },
    })
    const poll = await polling
    clearInterval(writer)
    writer = null
    const alive = server.child.exitCode === null && (await fetch(`${server.http}/healthz`)).ok
    // Clients cut by the server (they never should be) reconnect and resync before this converges.
    await converged(clients, { timeoutMs: 30_000 })
    // Every shared type the fuzzer's frames touch; map keys sorted, since their order is insertion order.
    const state = (c: Client): string => canonicalJson({
      text: c.text.toString(),
      edits: c.doc.getArray('edits').toJSON(),
      meta: c.doc.getMap('meta').toJSON(),
      list: c.doc.getArray('list').toJSON(),
      xml: c.doc.getXmlFragment('xml').toString(),
    })
    await waitFor(() => clients.every((c) => state(c) === state(clients[0]!)), { timeoutMs: 30_000, message: 'clients agree on every shared type' })
    const text = state(clients[0]!)
    const edits = new Set(clients[0]!.doc.getArray<string>('edits').toArray())
    const missing = markers.filter((m) => !edits.has(m))
    if (missing.length > 0) {
      const errorLines = server.logs.filter((line) => line.severity === 'ERROR' || line.severity === 'CRITICAL')
      throw new Error(`${missing.length} of ${markers.length} client edits missing, e.g. ${missing.slice(0, 3).join(' ')}; text ${JSON.stringify(text.slice(0, 300))}; ` +
        `server errors: ${JSON.stringify(errorLines.slice(0, 3))}`)
    }
    clearInterval(sampler)
    sampler = null
    const errors = server.logs.filter((line) => line.severity === 'ERROR' || line.severity === 'CRITICAL')
    // What the live server gives a client that joins now: its whole document, encoded by Yjs.
    const late = connectClient(server.url, ROOM)
    clients.push(late)
    await synced(late, 30_000)
    const lateState = state(late)
    for (const c of clients.splice(0)) c.destroy()
    await server.kill('SIGKILL')
    server = await startServerProcess(env)
    const fresh = connectClient(server.url, ROOM)
    clients.push(fresh)
    await synced(fresh, 30_000)
    // Durability: after kill -9 and a restart, a joiner gets what the connected clients held.
    try {
      await waitFor(() => state(fresh) === text, { timeoutMs: 10_000, message: 'restarted server serves the converged document' })
    } catch (error) {
      const got = state(fresh)
      let at = 0
      while (at < got.length && got[at] === text[at]) at++
      throw new Error(`${(error as Error).message}: differs at ${at}: expected ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 80))}, got ${JSON.stringify(got.slice(Math.max(0, at - 40), at + 80))}; ` +
        `a late joiner before the restart got ${lateState === text ? 'the same' : 'something else too'}; ` +
        `errors before the restart ${JSON.stringify(errors.slice(0, 2))}, after ${JSON.stringify(server.logs.filter((l) => l.severity === 'ERROR').slice(0, 2))}` +
        (process.env.FUZZ_KEEP === '1' ? `; data kept in ${dir}` : ''))
    }
    const roundTrips = lateState === text
    return {
      fuzz, poll, peakRssMb, startRssMb, alive, edits: markers.length, convergedLength: text.length, reloaded: true, roundTrips, errors,
      maxDepth: nestingDepth(fresh.doc), subdocuments: fresh.doc.subdocs.size,
    }
  } finally {
    if (writer !== null) clearInterval(writer)
    if (sampler !== null) clearInterval(sampler)
    for (const c of clients) c.destroy()
    if (server !== null) await server.kill('SIGKILL')
    if (process.env.FUZZ_KEEP !== '1') await rm(dir, { recursive: true, force: true })
  }
}
