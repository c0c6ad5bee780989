import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { insertToken, occurrences, readiness, startInstances, storedText } from '../helpers/cluster.js'
import type { ServerProcess } from '../helpers/server-process.js'
import { TempPostgres, TempRedis } from '../helpers/services.js'
import { waitFor } from '../helpers/wait.js'

// Every stock y-websocket provider adds a process 'exit' listener.
process.setMaxListeners(100)

/**
 * Redis and Postgres going away under three instances. These tests stop and start the services, so they
 * run their own private Redis and Postgres on free ports, never the shared ones.
 */
describe('three instances when Redis or Postgres go away', () => {
  let redis: TempRedis | null = null
  let postgres: TempPostgres | null = null
  let instances: ServerProcess[] = []
  const clients: Client[] = []
  const schema = 'outages'

  before(async () => {
    ;[redis, postgres] = await Promise.all([TempRedis.start(), TempPostgres.start()])
    instances = await startInstances({ databaseUrl: postgres.url, schema, redisUrl: redis.url, prefix: 'outages:' })
  })
  after(async () => {
    for (const client of clients) client.destroy()
    await Promise.all(instances.map((i) => i.kill()))
    await redis?.stop()
    await postgres?.destroy()
  })

  /** Two clients on each instance, connected directly. */
  const spread = async (room: string): Promise<Client[]> => {
    const group = instances.flatMap((instance) => [connectClient(instance.url, room), connectClient(instance.url, room)])
    clients.push(...group)
    await Promise.all(group.map((c) => synced(c, 15_000)))
    return group
  }

  /** Every writer inserts one token every `everyMs` until `until` resolves; returns the tokens written. */
  const writeUntil = async (writers: Client[], label: string, until: Promise<unknown>, everyMs = 50): Promise<string[]> => {
    const tokens: string[] = []
    let n = 0
    const tick = setInterval(() => {
      writers.forEach((writer, w) => {
        const token = `<${label}${w}.${n}>`
        insertToken(writer, token)
        tokens.push(token)
      })
      n++
    }, everyMs)
    try {
      await until
    } finally {
      clearInterval(tick)
    }
    return tokens
  }

  const assertEachOnce = (text: string, tokens: readonly string[]): void => {
    for (const token of tokens) assert.equal(occurrences(text, token), 1, `${token} present exactly once`)
  }

  it('catches up and converges after Redis restarts, with no edit lost', async () => {
    const group = await spread('redis-restart')
    const r = redis!
    const before = await writeUntil(group, 'a', converged(group).then(() => null))
    const during = await writeUntil(group, 'b', (async () => {
      await r.stop()
      // Keep editing while Redis is away: long enough for every instance to notice.
      await waitFor(() => instances.every((i) => i.logs.some((l) => String(l.message).includes('redis bus: connection error'))),
        { timeoutMs: 15_000, message: 'every instance noticed that Redis is gone' })
    })())
    await r.start()
    const back = performance.now()
    const text = await converged(group, { timeoutMs: 30_000 })
    console.log(`# all clients converged ${(performance.now() - back).toFixed(0)} ms after Redis came back`)
    assertEachOnce(text, [...before, ...during])
    await waitFor(async () => await storedText(postgres!.url, schema, 'redis-restart') === text,
      { timeoutMs: 10_000, message: 'Postgres holds the converged text' })
  })

  it('refuses edits while Postgres is down, acknowledges none it did not store, and resumes by itself', async () => {
    const room = 'postgres-down'
    const group = await spread(room)
    const observer = connectClient(instances[2]!.url, room)
    clients.push(observer)
    await synced(observer)
    const pg = postgres!
    const writers = group.slice(0, 4)
    const closeCodes: number[] = []
    for (const writer of writers) writer.provider.on('connection-close', (event: { code: number } | null) => { if (event !== null) closeCodes.push(event.code) })
    const before = await writeUntil(writers, 'p', converged([...group, observer]).then(() => null))
    let seenWhileDown: string | null = null
    const changedWhileDown: string[] = []
    const during = await writeUntil(writers, 'q', (async () => {
      await pg.stop()
      await waitFor(async () => (await Promise.all(instances.map((i) => readiness(i.http)))).every((s) => s === 503),
        { timeoutMs: 15_000, message: 'readiness 503 on every instance' })
      // From here on nothing can be committed, so nothing new may reach the observer.
      seenWhileDown = observer.text.toString()
      const watch = (): void => { changedWhileDown.push(observer.text.toString()) }
      observer.text.observe(watch)
      // The writers are on instances 1 and 2; keep editing until both have refused commits.
      await waitFor(() => instances.slice(0, 2).every((i) => i.logs.filter((l) => l.message === 'storage commit failed; updates were not applied').length >= 2),
        { timeoutMs: 15_000, message: 'instances with writers refused commits' })
      observer.text.unobserve(watch)
    })())
    assert.equal(observer.text.toString(), seenWhileDown, 'no edit was broadcast while Postgres was down')
    assert.deepEqual(changedWhileDown, [])
    assert.ok(closeCodes.includes(4503), `writers were closed with 4503 STORAGE_UNAVAILABLE (got ${closeCodes.join(', ')})`)
    await pg.start()
    const back = performance.now()
    await waitFor(async () => (await Promise.all(instances.map((i) => readiness(i.http)))).every((s) => s === 200),
      { timeoutMs: 20_000, message: 'readiness 200 on every instance' })
    const text = await converged([...group, observer], { timeoutMs: 30_000 })
    console.log(`# service resumed and clients converged ${(performance.now() - back).toFixed(0)} ms after Postgres came back`)
    assertEachOnce(text, [...before, ...during])
    // Postgres ended the pooled connections: pg reported it as 'error' on idle clients, and no process died.
    assert.ok(instances.some((i) => i.logs.some((l) => String(l.message).startsWith('postgres: an idle connection failed'))))
    for (const instance of instances) assert.equal(instance.child.exitCode, null)
    await waitFor(async () => await storedText(pg.url, schema, room) === text,
      { timeoutMs: 10_000, message: 'Postgres holds the converged text' })
  })
})
