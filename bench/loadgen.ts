/**
 * A load-generator process (forked by the orchestrator; never the server's process). It holds raw
 * clients and answers commands over IPC: open clients, pre-generate and send writers' updates at a rate
 * or in a burst, wait for convergence, report latencies and completion times, close.
 */
import { createHash } from 'node:crypto'
import * as Y from 'yjs'
import { BenchClient, covers, type StateVector } from './client.js'
import { now, sleep } from './clock.js'
import { serveCommands } from './ipc.js'
import type { Dialect } from './wire.js'

export interface OpenCommand {
  readonly cmd: 'open'
  readonly url: string
  readonly dialect: Dialect
  readonly rooms: readonly string[]
  /** Clients that parse payloads on arrival (latency probes, storm clients). */
  readonly track: boolean
  /** Tracking clients that also record arrival times, for latency. */
  readonly latency?: boolean
  /** How many clients connect at once; the next wave starts when a wave finished its handshake. */
  readonly concurrency: number
  readonly timeoutMs: number
  readonly writers?: boolean
}

export interface OpenResult {
  readonly opened: number
  readonly failed: number
  readonly startedAt: number
  readonly doneAt: number
}

export interface PrepareCommand { readonly cmd: 'prepare', readonly count: number, readonly chars: number }
export interface WriteCommand { readonly cmd: 'write', readonly rate: number, readonly burst: boolean }
export interface WriteResult {
  readonly writers: Array<{ readonly client: number, readonly sends: Float64Array }>
  readonly startedAt: number
}

export interface AwaitCommand {
  readonly cmd: 'await'
  /** Per room: the state vector every client must hold. */
  readonly expect: ReadonlyMap<string, StateVector>
  readonly timeoutMs: number
  /** Send times per Yjs client id, for the latency of tracking clients. */
  readonly sends?: ReadonlyMap<number, Float64Array>
  /** How many tracking clients compute the final text through a Y.Doc (a full check). */
  readonly textChecks?: number
  /** Record whether each client's first step 2 alone held the expected state. */
  readonly firstStep2?: boolean
}

export interface AwaitResult {
  readonly clients: number
  readonly complete: number
  /** When each complete client received the sync payload that completed it. */
  readonly completeAt: Float64Array
  readonly latencies: Float64Array
  readonly texts: Array<{ readonly length: number, readonly sha1: string }>
  /** Clients whose first step 2 lacked the expected (stored) state. */
  readonly incompleteFirstStep2: number
  /** Expected clocks (one per single-character update) that some client still lacked at the deadline. */
  readonly missing: number
  /** Clocks that reached a tracking client more than once. */
  readonly duplicates: number
}

/** The first client of each named room sends these updates. */
export interface SendCommand { readonly cmd: 'send', readonly updates: ReadonlyMap<string, readonly Uint8Array[]> }

export type Command = OpenCommand | PrepareCommand | WriteCommand | AwaitCommand | SendCommand | { readonly cmd: 'close' }

interface Writer {
  readonly client: BenchClient
  readonly doc: Y.Doc
  updates: Uint8Array[]
}

const subscribers: BenchClient[] = []
const writers: Writer[] = []

const open = async (command: OpenCommand): Promise<OpenResult> => {
  const startedAt = now()
  let failed = 0
  for (let i = 0; i < command.rooms.length; i += command.concurrency) {
    const wave = command.rooms.slice(i, i + command.concurrency).map((room) => new BenchClient({
      url: command.url, dialect: command.dialect, room, track: command.track, latency: command.latency === true,
    }))
    for (const client of wave) {
      if (command.writers === true) writers.push({ client, doc: new Y.Doc(), updates: [] })
      else subscribers.push(client)
    }
    const results = await Promise.all(wave.map((client) => Promise.race([
      client.opened.then(() => client.handshake).then(() => true, () => false),
      sleep(command.timeoutMs).then(() => false),
    ])))
    failed += results.filter((ok) => !ok).length
  }
  return { opened: command.rooms.length - failed, failed, startedAt, doneAt: now() }
}

const prepare = ({ count, chars }: PrepareCommand): void => {
  const piece = 'x'.repeat(chars)
  for (const writer of writers) {
    const text = writer.doc.getText('text')
    const updates: Uint8Array[] = []
    const capture = (update: Uint8Array): void => { updates.push(update) }
    writer.doc.on('update', capture)
    for (let i = 0; i < count; i++) text.insert(text.length, piece)
    writer.doc.off('update', capture)
    writer.updates = updates
  }
}

const write = async ({ rate, burst }: WriteCommand): Promise<WriteResult> => {
  const startedAt = now()
  const runs = writers.map(async (writer) => {
    const sends = new Float64Array(writer.updates.length)
    if (burst) {
      for (let i = 0; i < writer.updates.length; i++) {
        sends[i] = now()
        writer.client.send(writer.updates[i]!)
      }
    } else {
      const perWriter = rate / writers.length
      let sent = 0
      while (sent < writer.updates.length) {
        const due = Math.min(writer.updates.length, Math.floor(((now() - startedAt) * perWriter) / 1000) + 1)
        for (; sent < due; sent++) {
          sends[sent] = now()
          writer.client.send(writer.updates[sent]!)
        }
        await sleep(1)
      }
    }
    return { client: writer.doc.clientID, sends }
  })
  return { writers: await Promise.all(runs), startedAt }
}

const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex')

const awaitConvergence = async (command: AwaitCommand): Promise<AwaitResult> => {
  const deadline = now() + command.timeoutMs
  const done = new Set<BenchClient>()
  const completeAt = new Float64Array(subscribers.length)
  let incompleteFirstStep2 = 0
  if (command.firstStep2 === true) {
    for (const client of subscribers) {
      const want = command.expect.get(client.options.room)!
      const first = client.firstStep2
      const have = first === null ? new Map() : Y.decodeStateVector(Y.encodeStateVectorFromUpdate(first))
      if (!covers(have, want)) incompleteFirstStep2++
    }
  }
  for (;;) {
    // Tracking clients know their coverage at once; the others are checked by merging their payloads,
    // only when the whole process has been quiet for a moment so the check cannot delay an arrival.
    const quiet = subscribers.every((client) => now() - client.lastSyncAt > 100)
    subscribers.forEach((client, i) => {
      if (done.has(client)) return
      const want = command.expect.get(client.options.room)!
      const ok = client.options.track ? covers(client.cover, want) : quiet && covers(client.received(), want)
      if (ok) {
        done.add(client)
        completeAt[i] = client.lastSyncAt
      }
    })
    if (done.size === subscribers.length || now() > deadline) break
    await sleep(done.size === 0 ? 20 : 50)
  }
  const latencies: number[] = []
  if (command.sends !== undefined) {
    for (const client of subscribers) {
      if (client.options.latency !== true) continue
      for (const [id, sends] of command.sends) {
        const arrivals = client.arrivals.get(id) ?? []
        for (let i = 0; i < sends.length; i++) {
          const at = arrivals[i]
          if (at !== undefined) latencies.push(at - sends[i]!)
        }
      }
    }
  }
  let missing = 0
  for (const client of subscribers) {
    if (done.has(client)) continue
    const have = client.options.track ? client.cover : client.received()
    for (const [id, clock] of command.expect.get(client.options.room)!) missing += Math.max(0, clock - (have.get(id) ?? 0))
  }
  const duplicates = subscribers.reduce((sum, client) => sum + client.duplicateClocks, 0)
  const texts = subscribers.filter((client) => client.options.track).slice(0, command.textChecks ?? 0)
    .map((client) => { const text = client.text(); return { length: text.length, sha1: sha1(text) } })
  return {
    clients: subscribers.length,
    complete: done.size,
    completeAt: completeAt.filter((_, i) => done.has(subscribers[i]!)),
    latencies: Float64Array.from(latencies),
    texts,
    incompleteFirstStep2,
    missing,
    duplicates,
  }
}

const send = ({ updates }: SendCommand): void => {
  const clients = [...writers.map((w) => w.client), ...subscribers]
  for (const [room, list] of updates) {
    const client = clients.find((c) => c.options.room === room)
    if (client === undefined) throw new Error(`no client in room ${room}`)
    for (const update of list) client.send(update)
  }
}

const close = async (): Promise<void> => {
  await Promise.all([...subscribers, ...writers.map((w) => w.client)].map((client) => client.close()))
  subscribers.length = 0
  for (const writer of writers) writer.doc.destroy()
  writers.length = 0
}

const handle = async (command: Command): Promise<unknown> => {
  switch (command.cmd) {
    case 'open': return open(command)
    case 'prepare': return prepare(command)
    case 'write': return write(command)
    case 'await': return awaitConvergence(command)
    case 'send': return send(command)
    case 'close': return close()
  }
}

serveCommands(handle)
