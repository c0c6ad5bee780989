import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Bus } from '../../server/bus/bus.js'
import { RedisBus } from '../../server/bus/redis.js'
import { createLogger } from '../../server/log.js'
import { PostgresStorage } from '../../server/storage/postgres.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { deleteKeys, occurrences, startInstances, storedText, uniquePrefix, type ClusterEnv } from '../helpers/cluster.js'
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../helpers/postgres.js'
import type { ServerProcess } from '../helpers/server-process.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { destroyRedis, TempRedis } from '../helpers/services.js'
import { storageWith } from '../helpers/storage.js'
import { waitFor } from '../helpers/wait.js'

/** README "Many instances": a commit reaches every instance that has the room loaded within this. */
const HEAL_GOAL_MS = 2000
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

const closeCodes = (client: Client): number[] => {
  const codes: number[] = []
  client.provider.on('connection-close', (event: { code: number } | null) => { if (event !== null) codes.push(event.code) })
  return codes
}

const hasAll = (client: Client, tokens: readonly string[]): boolean => {
  const text = client.text.toString()
  return tokens.every((token) => text.includes(token))
}

const noticedRedisGone = (instances: readonly ServerProcess[]): Promise<unknown> =>
  waitFor(() => instances.every((i) => i.logs.some((l) => String(l.message).includes('redis bus: connection error'))),
    { timeoutMs: 15_000, message: 'every instance noticed that Redis is gone' })

/**
 * Real server processes on the shared Postgres (a schema of their own) and a Redis of their own, which the
 * tests stop and start; one with an append-only file, one that comes back empty.
 */
describe('two instances: every commit reaches the other, whatever the bus lost', () => {
  for (const persistent of [true, false]) {
    it(`a client of B that stays connected gets the edits A committed while Redis was away, though A was killed (Redis back ${persistent ? 'with its append-only file' : 'empty'})`, async () => {
      const redis = await TempRedis.start({ persistent })
      const env: ClusterEnv = { databaseUrl: TEST_DATABASE_URL, schema: uniqueSchema('heal'), redisUrl: redis.url, prefix: 'heal:' }
      const processes: ServerProcess[] = []
      const clients: Client[] = []
      try {
        const [a, b] = await startInstances(env, 2)
        processes.push(a!, b!)
        const room = 'lost-publish'
        const [a1, a2, onB] = [connectClient(a!.url, room), connectClient(a!.url, room), connectClient(b!.url, room)]
        clients.push(a1, a2, onB)
        await Promise.all(clients.map((c) => synced(c)))
        onB.text.insert(0, '<warm>')
        await converged(clients, { expected: '<warm>' })
        const closes = closeCodes(onB)

        await redis.stop()
        await noticedRedisGone(processes)
        const tokens = Array.from({ length: 5 }, (_, i) => `<a${i}>`)
        for (const token of tokens) {
          a1.text.insert(a1.text.length, token)
          // Echoed to a second client of A: committed.
          await waitFor(() => a2.text.toString().includes(token), { message: `A echoed ${token}` })
        }
        await a!.kill('SIGKILL')
        a1.destroy()
        a2.destroy()

        await redis.start()
        const back = performance.now()
        const healed = waitFor(() => hasAll(onB, tokens), { timeoutMs: HEAL_GOAL_MS, message: `B's client got A's edits within ${HEAL_GOAL_MS} ms of Redis returning (it has ${JSON.stringify(onB.text.toString())})` })
          .then(() => performance.now() - back)
        const [restarted] = await startInstances(env, 1)
        processes.push(restarted!)
        console.log(`# B's client held every edit ${(await healed).toFixed(0)} ms after Redis came back`)
        for (const token of tokens) assert.equal(occurrences(onB.text.toString(), token), 1, `${token} once`)
        assert.deepEqual(closes, [], 'B\'s client never reconnected')
        assert.equal(onB.provider.wsconnected, true)
        // The restarted A serves the same document.
        const fresh = connectClient(restarted!.url, room)
        clients.push(fresh)
        await converged([onB, fresh])
        assert.equal(await storedText(env.databaseUrl, env.schema, room), onB.text.toString())
      } finally {
        for (const client of clients) client.destroy()
        await Promise.all(processes.map((p) => p.kill()))
        await destroyRedis(redis)
        await dropSchema(env.schema)
      }
    })
  }

  it('edits on both instances while Redis is away converge, each once, when Redis comes back empty', async () => {
    const redis = await TempRedis.start()
    const env: ClusterEnv = { databaseUrl: TEST_DATABASE_URL, schema: uniqueSchema('heal2'), redisUrl: redis.url, prefix: 'heal2:' }
    const processes: ServerProcess[] = []
    const clients: Client[] = []
    try {
      processes.push(...await startInstances(env, 2))
      const room = 'both-sides'
      clients.push(...processes.flatMap((p) => [connectClient(p.url, room), connectClient(p.url, room)]))
      await Promise.all(clients.map((c) => synced(c)))
      await redis.stop()
      await noticedRedisGone(processes)
      const tokens: string[] = []
      for (let round = 0; round < 10; round++) {
        clients.forEach((client, i) => {
          const token = `<${i}.${round}>`
          client.text.insert(round % 2 === 0 ? 0 : client.text.length, token)
          tokens.push(token)
        })
        await new Promise((resolve) => setTimeout(resolve, 30))
      }
      await redis.start()
      const back = performance.now()
      const text = await converged(clients, { timeoutMs: HEAL_GOAL_MS + 3000 })
      console.log(`# all clients converged ${(performance.now() - back).toFixed(0)} ms after Redis came back empty`)
      for (const token of tokens) assert.equal(occurrences(text, token), 1, `${token} once`)
      assert.equal(await storedText(env.databaseUrl, env.schema, room), text)
    } finally {
      for (const client of clients) client.destroy()
      await Promise.all(processes.map((p) => p.kill()))
      await destroyRedis(redis)
      await dropSchema(env.schema)
    }
  })
})

/** A bus whose deliveries wait while `held`, in order, as a slow network would hold them. */
const holdable = (bus: Bus, gate: { held: boolean, waiting: Array<() => void> }): Bus => ({
  subscribe: (room, handler) => bus.subscribe(room, {
    message: (message) => { if (gate.held) gate.waiting.push(() => handler.message(message)); else handler.message(message) },
    gap: () => handler.gap(),
  }),
  publish: (room, message) => bus.publish(room, message),
  close: () => bus.close(),
})

describe('two instances admitting updates that reuse the same ids', () => {
  it('commit exactly one of them; every client converges on it, and the other sender is closed with 4409', async () => {
    const schema = uniqueSchema('conflict')
    const prefix = uniquePrefix('conflict')
    const log = createLogger('silent')
    const gate = { held: true, waiting: [] as Array<() => void> }
    // Each instance's first commit waits until both have admitted theirs, so that they reach Postgres together.
    const arrived: Array<() => void> = []
    let racing = true
    const servers: TestServer[] = []
    const clients: Client[] = []
    try {
      for (let i = 0; i < 2; i++) {
        const inner = await PostgresStorage.open({ url: TEST_DATABASE_URL, schema, log })
        const storage = storageWith(inner, {
          append: async (entries) => {
            if (racing) {
              await new Promise<void>((resolve) => {
                arrived.push(resolve)
                const go = (): void => {
                  racing = false
                  for (const release of arrived.splice(0)) release()
                }
                if (arrived.length === 2) go()
                // Never hang the test: a lone commit goes on after a while (and the assertions tell).
                else setTimeout(go, 5000).unref()
              })
            }
            return await inner.append(entries)
          },
          close: () => inner.close(),
        })
        const bus = holdable(new RedisBus({ url: REDIS_URL, prefix, log }), gate)
        const server = await startServer({ storage, bus })
        servers.push({ ...server, close: async () => { await server.close(); await bus.close(); await storage.close() } })
      }
      const [a, b] = servers
      const room = 'same-ids'
      // Two documents under one client id: the same ids, different content.
      const [forgerA, forgerB] = [connectClient(a!.url, room, { clientID: 4242 }), connectClient(b!.url, room, { clientID: 4242 })]
      const [onA, onB] = [connectClient(a!.url, room), connectClient(b!.url, room)]
      clients.push(forgerA, forgerB, onA, onB)
      await Promise.all(clients.map((c) => synced(c)))
      const codes = [closeCodes(forgerA), closeCodes(forgerB)]
      forgerA.text.insert(0, 'AAAA')
      forgerB.text.insert(0, 'BBBB')
      await waitFor(() => codes.some((c) => c.includes(4409)), { timeoutMs: 10_000, message: 'one sender closed with 4409' })
      const refused = codes[0]!.includes(4409) ? 0 : 1
      const winner = refused === 0 ? 'BBBB' : 'AAAA'
      assert.deepEqual(codes[1 - refused], [], 'the other sender stays connected')
      gate.held = false
      for (const deliver of gate.waiting.splice(0)) deliver()
      await converged([onA, onB, refused === 0 ? forgerB : forgerA], { expected: winner })
      assert.equal(await storedText(TEST_DATABASE_URL, schema, room), winner, 'Postgres holds exactly one of them')
      assert.equal((refused === 0 ? forgerA : forgerB).provider.shouldConnect, false, 'the refused sender does not reconnect (44xx is final)')
      // Refused by Postgres, not by the instance alone: both had admitted their update.
      const counted = async (server: TestServer, metric: string): Promise<number> =>
        Number(new RegExp(`^${metric} (\\d+)`, 'm').exec((await server.server.metrics.scrape()).body)?.[1] ?? 0)
      const refusedBatches = await Promise.all(servers.map((s) => counted(s, 'yjs_relay_commits_refused_total')))
      assert.deepEqual(refusedBatches.sort(), [0, 1], 'one instance had its batch refused by Postgres')
      assert.ok(await counted(servers[refused]!, 'yjs_relay_catch_up_reads_total') >= 1, 'and read what the other committed')
    } finally {
      for (const client of clients) client.destroy()
      for (const server of servers) await server.close()
      await deleteKeys(REDIS_URL, prefix)
      await dropSchema(schema)
    }
  })
})
