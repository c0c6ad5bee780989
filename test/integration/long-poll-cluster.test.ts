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
import { MemoryBusHub } from '../helpers/memory-bus.js'
import { waitFor } from '../helpers/wait.js'

/**
 * What each instance of a cluster is built on. This suite runs on `memoryCluster` (one shared storage
 * object, an in-process bus) so that it needs no services; to run it on real Redis and Postgres, add a
 * factory returning a Postgres storage and a Redis bus per instance (with `kill` closing both at once)
 * and pass it to `clusterSuite` as well.
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

/** A fetch that sends each request to the next instance in turn: no affinity at all. */
const alternating = (instances: readonly Instance[]): (input: string, init: RequestInit) => Promise<Response> => {
  let next = 0
  return (input, init) => {
    const target = instances[next++ % instances.length]!
    return fetch(input.replace(/^http:\/\/[^/]+/, target.base), init)
  }
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
      const poll = connectChannelClient(pollChannel({ fetch: alternating([a, b]), retryDelayMs: 50 }), { serverUrl: a.url, room })
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
      // Requests alternate, so edit until a send lands on A (the others land on B and commit there).
      await waitFor(() => {
        if (a.backend.stalledCommits > 0) return true
        edit(`k${edits.length}`)
        return false
      }, { intervalMs: 50, message: 'an edit stuck in a commit on A' })
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
