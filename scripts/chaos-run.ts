import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as prng from 'lib0/prng'
import { connectPollClient, connectWebsocketClient, wasSeen, writeToken, type ChaosClient, type Edit } from './chaos-clients.js'
import { ChaosCluster } from './chaos-cluster.js'
import { describeFault, drawFault, FAULT_KINDS, resourcesOf, type Fault, type FaultKind } from './chaos-schedule.js'

/**
 * A chaos run: three instances, clients that hop between them through the no-affinity proxy and keep
 * writing, and a seeded sequence of faults one after another for `durationMs`. Then the writing stops
 * and the run waits for every client, every instance and Postgres to hold every edit exactly once.
 */
export interface ChaosOptions {
  readonly seed: number
  readonly durationMs: number
  readonly faults?: readonly FaultKind[]
  readonly rooms?: number
  readonly websocketClients?: number
  readonly pollClients?: number
  /** Converged later than this after the last fault healed fails the run. Default 5 s. */
  readonly convergeGoalMs?: number
  /** How long to wait for convergence at all before giving up and reporting what differs. Default 60 s. */
  readonly convergeTimeoutMs?: number
  readonly log?: (line: string) => void
  /** Ends the run early (Ctrl-C): the faults stop, the last one heals, and everything is torn down. */
  readonly signal?: AbortSignal
}

export interface InjectedFault {
  readonly description: string
  /** Seconds into the run when the fault began. */
  readonly atS: number
  /** From the start of the fault until it was healed (instance back up, service back, latency off). */
  readonly tookMs: number
}

export interface ChaosReport {
  readonly seed: number
  readonly faults: readonly InjectedFault[]
  readonly edits: number
  readonly seen: number
  /** Tokens a client saw echoed (or received) that are missing somewhere at the end. */
  readonly lost: readonly string[]
  /** Tokens present more than once somewhere at the end. */
  readonly duplicated: readonly string[]
  /** Milliseconds from the last fault's healing to full convergence, or null if it never came. */
  readonly convergedMs: number | null
  readonly convergeGoalMs: number
  /** What still differed when the run gave up waiting, and instances that died or failed to start. */
  readonly problems: readonly string[]
  /** The folder holding every instance's log lines, written when the run failed. */
  readonly logs: string | null
  readonly ok: boolean
}

const UNREADABLE = '(unreadable: '

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Every copy of every room: each client's text, each instance's and Postgres's. */
const snapshot = async (cluster: ChaosCluster, clients: readonly ChaosClient[], rooms: readonly string[]): Promise<Map<string, string>> => {
  const copies = new Map<string, string>()
  for (const client of clients) copies.set(`client ${client.name}`, client.text.toString())
  const unreadable = (error: Error): string => `${UNREADABLE}${error.message})`
  // Read at once, not one after another: a copy read seconds after the others would blur the time to converge.
  const reads = rooms.flatMap((room) => [
    ...cluster.instances.map((_, i) => [`instance ${i + 1} ${room}`, cluster.instanceText(i, room).catch(unreadable)] as const),
    [`postgres ${room}`, cluster.storedText(room).catch(unreadable)] as const,
  ])
  for (const [where, text] of reads) copies.set(where, await text)
  return copies
}

const roomOf = (where: string, clients: readonly ChaosClient[]): string =>
  where.startsWith('client ') ? clients.find((c) => `client ${c.name}` === where)!.room : where.split(' ').at(-1)!

/** `<2.155>..<2.194> (40)`: the tokens of one author, as runs of consecutive numbers. */
const runs = (tokens: readonly string[]): string => {
  const parsed = tokens.map((t) => /^<(\d+)\.(\d+)>$/.exec(t)!).map((m) => [Number(m[1]), Number(m[2])] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
  const out: string[] = []
  for (let i = 0; i < parsed.length;) {
    let j = i
    while (j + 1 < parsed.length && parsed[j + 1]![0] === parsed[i]![0] && parsed[j + 1]![1] === parsed[j]![1] + 1) j++
    const [c, a] = parsed[i]!
    out.push(j === i ? `<${c}.${a}>` : `<${c}.${a}>..<${c}.${parsed[j]![1]}>`)
    i = j + 1
  }
  return `${out.slice(0, 6).join(' ')}${out.length > 6 ? ` and ${out.length - 6} more runs` : ''}`
}

/**
 * How often each token occurs in a copy's text, in one pass over it: searching the text once per edit
 * took 8 s per reading after a 10-minute run (14,000 edits, 20 copies of 100 KB), and blurred the time to
 * converge by as much.
 */
const countTokens = (text: string): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const [token] of text.matchAll(/<\d+\.\d+>/g)) counts.set(token, (counts.get(token) ?? 0) + 1)
  return counts
}

/** What differs, one line per copy that lacks an edit or holds one twice, and clients not connected. */
const differences = (copies: Map<string, string>, edits: readonly Edit[], clients: readonly ChaosClient[]): string[] => {
  const found: string[] = []
  for (const client of clients) if (!client.ready) found.push(`client ${client.name} is not connected and synced`)
  for (const [where, text] of copies) {
    const room = roomOf(where, clients)
    const counts = countTokens(text)
    const missing: string[] = []
    const twice: string[] = []
    for (const edit of edits) {
      if (edit.room !== room) continue
      const n = counts.get(edit.token) ?? 0
      if (n === 0) missing.push(edit.token)
      else if (n > 1) twice.push(edit.token)
    }
    if (missing.length > 0) found.push(`${where} lacks ${missing.length} edits: ${runs(missing)}`)
    if (twice.length > 0) found.push(`${where} holds ${twice.length} edits more than once: ${runs(twice)}`)
  }
  return found
}

export const runChaos = async (options: ChaosOptions): Promise<ChaosReport> => {
  const log = options.log ?? (() => {})
  const kinds = options.faults ?? FAULT_KINDS
  const goal = options.convergeGoalMs ?? 5000
  const faultGen = prng.create(options.seed)
  // Clients draw from their own generator: their timing must not shift the fault schedule.
  const clientGen = prng.create(options.seed * 7919 + 1)
  const roomNames = Array.from({ length: options.rooms ?? 2 }, (_, r) => `chaos-${options.seed}-${r}`)
  const cluster = await ChaosCluster.start()
  const clients: ChaosClient[] = []
  const edits: Edit[] = []
  // One pending timer per client (its next write), and the hopper's.
  const timers: Array<NodeJS.Timeout | undefined> = []
  const injected: InjectedFault[] = []
  let hopper: NodeJS.Timeout | undefined
  const started = performance.now()
  const at = (): number => (performance.now() - started) / 1000
  try {
    for (const room of roomNames) {
      for (let c = 0; c < (options.websocketClients ?? 4); c++) clients.push(connectWebsocketClient(cluster.url, room, `${room}/ws${c}`))
      for (let c = 0; c < (options.pollClients ?? 2); c++) clients.push(connectPollClient(cluster.url, room, `${room}/poll${c}`))
    }
    const deadline = Date.now() + 30_000
    while (!clients.every((c) => c.ready)) {
      if (Date.now() > deadline || options.signal?.aborted === true) throw new Error(`clients did not connect: ${clients.filter((c) => !c.ready).map((c) => c.name).join(', ')}`)
      await sleep(50)
    }
    log(`# ${clients.length} clients in ${roomNames.length} rooms through the proxy on ${cluster.url}; instances on ${cluster.ports.join(', ')}`)

    // Each client writes a token every 200-800 ms; every 2 s a random socket client hops to another instance.
    let writing = true
    clients.forEach((client, c) => {
      let n = 0
      const write = (): void => {
        if (!writing) return
        edits.push(writeToken(client, `<${c}.${n++}>`, clientGen))
        timers[c] = setTimeout(write, prng.int32(clientGen, 200, 800))
      }
      timers[c] = setTimeout(write, prng.int32(clientGen, 0, 500))
    })
    const sockets = clients.filter((c) => c.kind === 'websocket')
    hopper = setInterval(() => prng.oneOf(clientGen, sockets).hop(), 2000)

    // Faults run one after another, or two at once when the second overlaps; never two on one thing.
    const active = new Map<Promise<void>, readonly string[]>()
    while (performance.now() - started < options.durationMs && options.signal?.aborted !== true) {
      const fault = drawFault(faultGen, kinds, cluster.ports.length)
      const resources = resourcesOf(fault, cluster.ports.length)
      const blocking = (): Array<Promise<void>> => [...active].filter(([, held]) =>
        !fault.overlaps || active.size >= 2 || held.some((r) => resources.includes(r))).map(([running]) => running)
      for (let waitFor = blocking(); waitFor.length > 0; waitFor = blocking()) await Promise.race(waitFor)
      await sleep(fault.pauseMs)
      const begin = performance.now()
      const description = describeFault(fault)
      log(`# ${at().toFixed(1)} s: ${description}`)
      const running: Promise<void> = inject(cluster, fault).catch((error: unknown) => {
        cluster.incidents.push(`${description} did not heal: ${(error as Error).message.slice(0, 300)}`)
      }).then(() => {
        injected.push({ description, atS: (begin - started) / 1000, tookMs: performance.now() - begin })
        active.delete(running)
      })
      active.set(running, resources)
    }
    await Promise.all(active.keys())
    const healed = performance.now()
    writing = false
    for (const timer of timers) clearTimeout(timer)
    clearInterval(hopper)
    log(`# ${at().toFixed(1)} s: last fault healed; ${edits.length} edits written, waiting for convergence`)

    let convergedMs: number | null = null
    let remaining: string[] = []
    // The copies as last compared: what is lost or doubled is judged on the same reading as convergence.
    let final = new Map<string, string>()
    const giveUp = healed + (options.convergeTimeoutMs ?? 60_000)
    // What still differed when the goal passed: why a slow convergence was slow.
    let atGoal: string[] = []
    for (;;) {
      const reading = performance.now()
      final = await snapshot(cluster, clients, roomNames)
      const readMs = performance.now() - reading
      const before = remaining.join('\n')
      remaining = differences(final, edits, clients)
      // How convergence went: each change of what differs, with its time.
      if (remaining.join('\n') !== before) log(`# +${((performance.now() - healed) / 1000).toFixed(1)} s (copies read in ${readMs.toFixed(0)} ms): ${remaining.length === 0 ? 'converged' : remaining.join('; ')}`)
      if (remaining.length === 0) {
        convergedMs = performance.now() - healed
        break
      }
      if (atGoal.length === 0 && performance.now() - healed > goal) atGoal = remaining
      if (performance.now() > giveUp || options.signal?.aborted === true) break
      await sleep(100)
    }
    const seenEdits = edits.filter((e) => wasSeen(e, clients))
    // A copy that could not be read (an instance that did not come back) says nothing of loss: the
    // differences name it, and the run fails on convergence.
    const readable = [...final].filter(([, text]) => !text.startsWith(UNREADABLE)).map(([where, text]) => [roomOf(where, clients), countTokens(text)] as const)
    const lost = seenEdits.filter((e) => readable.some(([room, counts]) => room === e.room && !counts.has(e.token))).map((e) => e.token)
    const duplicated = edits.filter((e) => readable.some(([room, counts]) => room === e.room && counts.get(e.token)! > 1)).map((e) => e.token)
    const unseen = edits.filter((e) => !wasSeen(e, clients))
    const problems = [
      ...cluster.incidents,
      ...(convergedMs !== null && atGoal.length > 0 ? atGoal.map((line) => `${goal} ms after the last fault: ${line}`) : []),
      ...remaining,
      ...(unseen.length > 0 && remaining.length > 0 ? [`edits no client saw echoed: ${runs(unseen.map((e) => e.token))}`] : []),
    ]
    const ok = lost.length === 0 && duplicated.length === 0 && convergedMs !== null && convergedMs <= goal && cluster.incidents.every((i) => !i.includes('exited by itself') && !i.includes('did not heal'))
    let logs: string | null = null
    if (!ok) {
      logs = mkdtempSync(join(tmpdir(), `yjs-relay-chaos-${options.seed}-`))
      cluster.writeLogs(logs)
    }
    return {
      seed: options.seed,
      faults: injected,
      edits: edits.length,
      seen: seenEdits.length,
      lost,
      duplicated,
      convergedMs,
      convergeGoalMs: goal,
      problems,
      logs,
      ok,
    }
  } finally {
    for (const timer of timers) clearTimeout(timer)
    clearInterval(hopper)
    for (const client of clients) client.destroy()
    await cluster.destroy()
  }
}

/** Injects `fault` and resolves once it has healed. */
const inject = async (cluster: ChaosCluster, fault: Fault): Promise<void> => {
  const proxies = (service: 'redis' | 'postgres' | null) => {
    const all = service === 'postgres' ? cluster.postgresProxies : cluster.redisProxies
    return fault.instance === null ? all : [all[fault.instance]!]
  }
  switch (fault.kind) {
    case 'kill':
      await cluster.stopInstance(fault.instance!, 'SIGKILL')
      await sleep(fault.downMs)
      await cluster.startInstance(fault.instance!)
      return
    case 'term':
      await cluster.stopInstance(fault.instance!, 'SIGTERM')
      await cluster.startInstance(fault.instance!)
      return
    case 'redis-restart':
    case 'redis-wipe':
      await cluster.redis.stop({ keepData: fault.kind === 'redis-restart' })
      await sleep(fault.downMs)
      await cluster.redis.start()
      return
    case 'postgres-restart':
      await cluster.postgres.stop()
      await sleep(fault.downMs)
      await cluster.postgres.start()
      return
    case 'latency':
      for (const proxy of proxies(fault.service)) proxy.setLatency(fault.latencyMs)
      await sleep(fault.downMs)
      for (const proxy of proxies(fault.service)) proxy.setLatency(0)
      return
    case 'drop':
      for (const proxy of proxies(fault.service)) proxy.dropAll()
      return
    case 'redis-cut':
      for (const proxy of proxies('redis')) proxy.setCut(true)
      await sleep(fault.downMs)
      for (const proxy of proxies('redis')) proxy.setCut(false)
  }
}

/** The report as the lines `npm run chaos` prints. */
export const formatReport = (report: ChaosReport): string => {
  const lines = [`chaos run, seed ${report.seed}: ${report.ok ? 'PASSED' : 'FAILED'}`, `faults injected: ${report.faults.length}`]
  for (const fault of report.faults) lines.push(`  ${fault.atS.toFixed(1).padStart(6)} s  ${fault.description} (healed after ${fault.tookMs.toFixed(0)} ms)`)
  lines.push(`edits made: ${report.edits} (${report.seen} seen echoed by a client)`)
  lines.push(`lost: ${report.lost.length}${report.lost.length > 0 ? ` (${report.lost.slice(0, 10).join(' ')})` : ''}`)
  lines.push(`duplicated: ${report.duplicated.length}${report.duplicated.length > 0 ? ` (${report.duplicated.slice(0, 10).join(' ')})` : ''}`)
  lines.push(`time to converge after the last fault: ${report.convergedMs === null ? 'never' : `${report.convergedMs.toFixed(0)} ms`} (goal ${report.convergeGoalMs} ms)`)
  for (const problem of report.problems) lines.push(`  ! ${problem}`)
  if (report.logs !== null) lines.push(`instance logs: ${report.logs}`)
  return lines.join('\n')
}
