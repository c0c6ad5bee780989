import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Bus } from '../../server/bus/bus.js'
import { createLogger } from '../../server/log.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import type { Storage } from '../../server/storage/storage.js'
import { SyncServer } from '../../server/sync-server.js'
import { pollChannel } from '../../web/poll-channel.js'
import { connectChannelClient, type ChannelClient } from '../helpers/channel-client.js'
import { connectClient, synced, type Client } from '../helpers/clients.js'
import { deleteKeys, startInstances, storedText, uniquePrefix } from '../helpers/cluster.js'
import { MemoryBusHub } from '../helpers/memory-bus.js'
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../helpers/postgres.js'
import type { ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait.js'

/**
 * What each in-process instance is built on. `memoryCluster` (one shared storage object, an in-process
 * bus) needs no services and can stall commits, to kill an instance with an edit provably in flight;
 * the suite at the end runs the same scenario on real server processes over Postgres and Redis.
 */
interface Backend {
  readonly storage: Storage
  readonly bus: Bus
  /** Cuts the instance off its storage and bus at once, as a process death would. */
  kill (): void
  /** From now on the instance's commits hang until it is killed: to kill it with updates in flight. */
  stall (): void
  readonly stalledCommits: number
}

interface ClusterFactory {
  readonly name: string
  instance (): Promise<Backend>
  close (): Promise<void>
}

/** Storage that stops answering once killed: nothing a dead instance does afterwards reaches it. */
const killable = (storage: Storage): Storage & { kill (): void, stall (): void, readonly stalledCommits: number } => {
  let dead = false
  let stalling = false
  const stalled: Array<(error: Error) => void> = []
  const alive = (): void => { if (dead) throw new Error('instance killed') }
  return {
    load: async (room) => { alive(); return storage.load(room) },
    append: async (entries) => {
      alive()
      if (stalling) await new Promise<void>((_resolve, reject) => stalled.push(reject))
      return storage.append(entries)
    },
    compact: async (room) => { alive(); return storage.compact(room) },
    has: async (room) => { alive(); return storage.has(room) },
    check: async () => { alive() },
    close: async () => {},
    kill: () => {
      dead = true
      for (const reject of stalled.splice(0)) reject(new Error('instance killed'))
    },
    stall: () => { stalling = true },
    get stalledCommits () { return stalled.length },
  }
}

const memoryCluster = (): ClusterFactory => {
  const shared = new MemoryStorage()
  const hub = new MemoryBusHub()
  return {
    name: 'in-process (shared memory storage, in-memory bus)',
    instance: async () => {
      const storage = killable(shared)
      const bus = hub.connect()
      return {
        storage,
        bus,
        kill: () => { storage.kill(); bus.kill() },
        stall: () => storage.stall(),
        get stalledCommits () { return storage.stalledCommits },
      }
    },
    close: async () => {},
  }
}

interface Instance {
  readonly backend: Backend
  readonly sync: SyncServer
  readonly http: Server
  readonly url: string
  readonly base: string
  requests: number
  kill (): Promise<void>
  close (): Promise<void>
}

const startInstance = async (cluster: ClusterFactory): Promise<Instance> => {
  const backend = await cluster.instance()
  const sync = new SyncServer({
    storage: backend.storage,
    bus: backend.bus,
    logger: createLogger(process.env.TEST_LOG_LEVEL as never ?? 'silent'),
    pollHoldMs: 1000,
  })
  const http = createServer()
  sync.attach(http, { requests: true })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const { port } = http.address() as AddressInfo
  let down = false
  const instance: Instance = {
    backend,
    sync,
    http,
    url: `ws://127.0.0.1:${port}`,
    base: `http://127.0.0.1:${port}`,
    requests: 0,
    kill: async () => {
      if (down) return
      down = true
      backend.kill()
      // Every open request and socket is cut, as when the process dies; nothing more is stored.
      http.closeAllConnections()
      http.close()
      await sync.close()
    },
    close: async () => {
      if (down) return
      down = true
      http.closeAllConnections()
      await sync.close()
      await new Promise<void>((resolve) => http.close(() => resolve()))
      await backend.bus.close()
    },
  }
  http.on('request', () => { instance.requests++ })
  return instance
}

/**
 * A fetch that sends each request to the next instance in turn: no affinity at all. Setting `sendsTo`
 * steers the sends (`op=send`) to one instance instead, as a load balancer might by chance.
 */
const alternating = (instances: readonly Instance[]): ((input: string, init: RequestInit) => Promise<Response>) & { sendsTo: Instance | null } => {
  let next = 0
  const route = Object.assign((input: string, init: RequestInit): Promise<Response> => {
    const target = route.sendsTo !== null && input.includes('op=send') ? route.sendsTo : instances[next++ % instances.length]!
    return fetch(input.replace(/^http:\/\/[^/]+/, target.base), init)
  }, { sendsTo: null as Instance | null })
  return route
}

const textOf = (c: { text: { toString (): string } }): string => c.text.toString()

const clusterSuite = (makeCluster: () => ClusterFactory): void => {
  const cluster = makeCluster()
  describe(`a long-polling client alternating between two instances, ${cluster.name}`, () => {
    let a: Instance
    let b: Instance
    const clients: Array<Client | ChannelClient> = []

    before(async () => {
      a = await startInstance(cluster)
      b = await startInstance(cluster)
    })
    after(async () => {
      for (const c of clients) c.destroy()
      await a.close()
      await b.close()
      await cluster.close()
    })

    it('converges with socket clients on both, and keeps its edits when one instance is killed mid-poll', async () => {
      const room = 'cluster-room'
      const onA = connectClient(a.url, room)
      const onB = connectClient(b.url, room)
      const route = alternating([a, b])
      const poll = connectChannelClient(pollChannel({ fetch: route, retryDelayMs: 50 }), { serverUrl: a.url, room })
      clients.push(onA, onB, poll)
      await Promise.all([synced(onA), synced(onB)])
      await waitFor(() => poll.synced, { message: 'poll client sync' })

      onA.text.insert(0, 'A ')
      onB.text.insert(0, 'B ')
      poll.text.insert(0, 'P ')
      const all = [onA, onB, poll]
      await waitFor(() => all.every((c) => textOf(c) === textOf(onA) && textOf(c).length === 6), { message: `convergence (${all.map(textOf).join(' | ')})` })
      assert.ok(a.requests >= 2 && b.requests >= 2, `requests: ${a.requests} to A, ${b.requests} to B`)

      poll.awareness.setLocalStateField('user', 'poller')
      onB.provider.awareness.setLocalStateField('user', 'on B')
      await waitFor(() => onA.provider.awareness.getStates().get(poll.doc.clientID)?.user === 'poller' &&
        onB.provider.awareness.getStates().get(poll.doc.clientID)?.user === 'poller', { message: 'poll awareness on both instances' })
      await waitFor(() => poll.awareness.getStates().get(onB.doc.clientID)?.user === 'on B', { message: 'awareness from B at the poll client' })

      // Kill A while it holds the poll client's poll and has one of its edits not yet committed.
      const edits: string[] = []
      const edit = (label: string): void => {
        edits.push(label)
        poll.text.insert(poll.text.length, `${label} `)
      }
      a.backend.stall()
      // An edit whose send lands on A. Left to alternation, a send and a poll per edit can land every send
      // on B.
      route.sendsTo = a
      edit('k0')
      await waitFor(() => a.backend.stalledCommits > 0, { message: 'an edit stuck in a commit on A' })
      route.sendsTo = null
      await waitFor(() => a.sync.heldPolls > 0, { message: 'a poll held by A' })
      await a.kill()
      edit('after-kill')
      await waitFor(() => b.sync.heldPolls > 0, { message: 'the poll client polling B after the kill' })
      edit('last')

      await waitFor(() => textOf(onB) === textOf(poll), { message: `B and the poll client converging (${textOf(onB)} | ${textOf(poll)})` })
      for (const label of edits) assert.ok(textOf(onB).includes(label), `${label} reached B: ${textOf(onB)}`)
      assert.equal(poll.opens, 1, `the channel rode through the kill (closes: ${JSON.stringify(poll.closes)})`)

      // And they are durable: a fresh instance, loading from the shared storage, has every one.
      const c = await startInstance(cluster)
      try {
        const fresh = connectClient(c.url, room)
        clients.push(fresh)
        await synced(fresh)
        for (const label of [...edits, 'A', 'B', 'P']) assert.ok(textOf(fresh).includes(label), `${label} stored: ${textOf(fresh)}`)
      } finally {
        await c.close()
      }
    })
  })
}

clusterSuite(memoryCluster)

/** A fetch that sends each request to the next of `bases` in turn. */
const alternatingBases = (bases: readonly string[]): (input: string, init: RequestInit) => Promise<Response> => {
  let next = 0
  return (input, init) => fetch(input.replace(/^http:\/\/[^/]+/, bases[next++ % bases.length]!), init)
}

/** Polls held by a server process now, from its metrics. */
const heldPolls = async (http: string): Promise<number> => {
  const text = await (await fetch(`${http}/metrics`)).text()
  return Number(/yjs_relay_connections\{transport="poll"\} (\d+)/.exec(text)?.[1] ?? 0)
}

describe('a long-polling client alternating between two server processes on Postgres and Redis', () => {
  const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const env = { databaseUrl: TEST_DATABASE_URL, schema: uniqueSchema('longpoll'), redisUrl: REDIS_URL, prefix: uniquePrefix('longpoll') }
  let instances: ServerProcess[] = []
  const clients: Array<Client | ChannelClient> = []

  before(async () => { instances = await startInstances(env, 2) })
  after(async () => {
    for (const c of clients) c.destroy()
    await Promise.all(instances.map((i) => i.kill()))
    await dropSchema(env.schema).catch(() => {})
    await deleteKeys(REDIS_URL, env.prefix).catch(() => {})
  })

  it('converges with socket clients on both, and keeps its edits when one process is SIGKILLed mid-poll', async () => {
    const [a, b] = instances as [ServerProcess, ServerProcess]
    const room = 'real-cluster'
    const onA = connectClient(a.url, room)
    const onB = connectClient(b.url, room)
    const poll = connectChannelClient(pollChannel({ fetch: alternatingBases([a.http, b.http]), retryDelayMs: 50 }), { serverUrl: a.url, room })
    clients.push(onA, onB, poll)
    await Promise.all([synced(onA), synced(onB)])
    await waitFor(() => poll.synced, { timeoutMs: 15_000, message: 'poll client sync' })

    onA.text.insert(0, 'A ')
    onB.text.insert(0, 'B ')
    poll.text.insert(0, 'P ')
    const all = [onA, onB, poll]
    await waitFor(() => all.every((c) => textOf(c) === textOf(onA) && textOf(c).length === 6),
      { timeoutMs: 15_000, message: `convergence (${all.map(textOf).join(' | ')})` })
    poll.awareness.setLocalStateField('user', 'poller')
    await waitFor(() => onA.provider.awareness.getStates().get(poll.doc.clientID)?.user === 'poller' &&
      onB.provider.awareness.getStates().get(poll.doc.clientID)?.user === 'poller', { timeoutMs: 15_000, message: 'poll awareness on both instances' })

    // Until A holds the poll client's poll, B's client changes the document (not the text): that answers
    // the poll held by B, and the next one goes to A. Then edits, and A is killed with them in flight.
    let tick = 0
    await waitFor(async () => {
      if (await heldPolls(a.http) > 0) return true
      onB.doc.getMap('ticks').set('tick', ++tick)
      return false
    }, { timeoutMs: 20_000, intervalMs: 200, message: 'a poll held by A' })
    const edits: string[] = []
    const edit = (label: string): void => {
      edits.push(label)
      poll.text.insert(poll.text.length, `${label} `)
    }
    edit('k0')
    edit('k1')
    await a.kill('SIGKILL')
    edit('after-kill')

    await waitFor(() => textOf(onB) === textOf(poll) && edits.every((label) => textOf(onB).includes(label)),
      { timeoutMs: 20_000, message: `B and the poll client converging with every edit (${textOf(onB)} | ${textOf(poll)})` })
    assert.equal(poll.opens, 1, `the channel rode through the kill (closes: ${JSON.stringify(poll.closes)})`)
    await waitFor(async () => {
      const stored = await storedText(env.databaseUrl, env.schema, room)
      return edits.every((label) => stored.includes(label))
    }, { timeoutMs: 10_000, message: 'every edit of the poll client in Postgres' })
  })
})
