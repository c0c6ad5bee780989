import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { RoundRobinProxy } from '../../scripts/round-robin-proxy.js'
import { connectClient, converged, cutAbruptly, synced, type Client } from '../helpers/clients.js'
import { deleteKeys, insertToken, occurrences, startInstances, storedText, uniquePrefix } from '../helpers/cluster.js'
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../helpers/postgres.js'
import type { ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait.js'

// Every stock y-websocket provider adds a process 'exit' listener.
process.setMaxListeners(100)

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const env = { databaseUrl: TEST_DATABASE_URL, schema: uniqueSchema('cluster'), redisUrl: REDIS_URL, prefix: uniquePrefix('cluster') }

describe('three instances on one Postgres and one Redis, no session affinity', () => {
  let instances: ServerProcess[] = []
  let proxy: RoundRobinProxy | null = null
  const clients: Client[] = []
  const connect = (url: string, room: string): Client => {
    const client = connectClient(url, room)
    clients.push(client)
    return client
  }
  const stored = (room: string): Promise<string> => storedText(env.databaseUrl, env.schema, room)

  before(async () => {
    instances = await startInstances(env)
  })
  after(async () => {
    for (const client of clients) client.destroy()
    await proxy?.close()
    await Promise.all(instances.map((i) => i.kill()))
    await dropSchema(env.schema).catch(() => {})
    await deleteKeys(REDIS_URL, env.prefix).catch(() => {})
  })

  it('clients spread over three instances converge, and cursors cross instances and vanish on an abrupt disconnect', async () => {
    const room = 'spread'
    const group = instances.flatMap((instance) => [connect(instance.url, room), connect(instance.url, room)])
    await Promise.all(group.map((c) => synced(c)))
    group.forEach((client, i) => { for (let n = 0; n < 5; n++) insertToken(client, `<c${i}.${n}>`) })
    const text = await converged(group, { timeoutMs: 20_000 })
    for (let i = 0; i < group.length; i++) for (let n = 0; n < 5; n++) assert.equal(occurrences(text, `<c${i}.${n}>`), 1)

    const leaver = group[0]!
    const others = group.slice(2)
    leaver.provider.awareness.setLocalStateField('cursor', { anchor: 3, head: 3 })
    await waitFor(() => others.every((c) => c.provider.awareness.getStates().get(leaver.doc.clientID)?.cursor !== undefined),
      { timeoutMs: 10_000, message: 'the cursor reaches clients on the other instances' })
    const cut = performance.now()
    cutAbruptly(leaver)
    await waitFor(() => others.every((c) => !c.provider.awareness.getStates().has(leaver.doc.clientID)),
      { timeoutMs: 10_000, message: 'the cursor disappears on the other instances' })
    console.log(`# awareness removal crossed instances ${(performance.now() - cut).toFixed(0)} ms after an abrupt disconnect`)
  })

  it('a client joining on instance 2 a room loaded and edited on instance 1 only gets the full state', async () => {
    const room = 'only-on-one'
    const first = connect(instances[0]!.url, room)
    await synced(first)
    for (let n = 0; n < 20; n++) insertToken(first, `<x${n}>`)
    await waitFor(async () => occurrences(await stored(room), '<x19>') === 1, { timeoutMs: 10_000, message: 'edits stored' })
    const second = connect(instances[1]!.url, room)
    await synced(second)
    await converged([first, second], { expected: first.text.toString() })
  })

  it('SIGKILL of one instance during a burst from 6 writers loses and duplicates no edit', async () => {
    const room = 'burst'
    proxy = new RoundRobinProxy(instances.map((i) => ({ host: '127.0.0.1', port: i.port })))
    const port = await proxy.listen()
    const writers = Array.from({ length: 6 }, () => connect(`ws://127.0.0.1:${port}`, room))
    await Promise.all(writers.map((c) => synced(c, 15_000)))
    // A client with a cursor on the instance that will die, watched from another instance.
    const doomed = connect(instances[1]!.url, room)
    const watcher = connect(instances[0]!.url, room)
    await Promise.all([synced(doomed), synced(watcher)])
    doomed.provider.awareness.setLocalStateField('cursor', { anchor: 0, head: 0 })
    await waitFor(() => watcher.provider.awareness.getStates().get(doomed.doc.clientID)?.cursor !== undefined,
      { timeoutMs: 10_000, message: 'the cursor reaches the other instance' })
    let killedAt = 0
    const perWriter = 40
    let killed = false
    await new Promise<void>((resolve) => {
      let n = 0
      const tick = setInterval(() => {
        writers.forEach((writer, w) => insertToken(writer, `<w${w}.${n}>`))
        n++
        if (n === perWriter / 2 && !killed) {
          killed = true
          killedAt = performance.now()
          doomed.provider.shouldConnect = false
          void instances[1]!.kill('SIGKILL')
        }
        if (n === perWriter) {
          clearInterval(tick)
          resolve()
        }
      }, 25)
    })
    assert.equal(await instances[1]!.exited, 'SIGKILL')
    const text = await converged(writers, { timeoutMs: 30_000 })
    for (let w = 0; w < writers.length; w++) {
      for (let n = 0; n < perWriter; n++) assert.equal(occurrences(text, `<w${w}.${n}>`), 1, `<w${w}.${n}> present exactly once`)
    }
    const survivors = [instances[0]!, instances[2]!]
    const probes = survivors.map((instance) => connect(instance.url, room))
    await converged([...probes, writers[0]!], { expected: text, timeoutMs: 20_000 })
    await waitFor(async () => (await stored(room)) === text, { timeoutMs: 10_000, message: 'Postgres holds the converged text' })
    // Far sooner than y-protocols' 30 s timeout: the killed instance's liveness key expired.
    await waitFor(() => !watcher.provider.awareness.getStates().has(doomed.doc.clientID),
      { timeoutMs: 20_000, message: 'the cursor of a client of the killed instance disappears' })
    console.log(`# awareness of a client of a SIGKILLed instance removed on the others after ${(performance.now() - killedAt).toFixed(0)} ms`)
  })
})

