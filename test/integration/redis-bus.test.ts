import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { RedisBus } from '../../server/bus/redis.js'
import type { BusHandler, BusMessage } from '../../server/bus/bus.js'
import { createLogger } from '../../server/log.js'
import { TempRedis } from '../helpers/services.js'
import { waitFor } from '../helpers/wait.js'

const log = createLogger('silent')

interface Recorder extends BusHandler {
  readonly messages: BusMessage[]
  gaps: number
}

const recorder = (): Recorder => {
  const r: Recorder = {
    messages: [],
    gaps: 0,
    message: (m) => { r.messages.push(m) },
    gap: () => { r.gaps++ },
  }
  return r
}

const bytes = (n: number): Uint8Array => Uint8Array.of(n)

/** These tests stop Redis, so they run their own private redis-server on a free port. */
describe('Redis Streams bus', () => {
  let redis: TempRedis
  const buses: RedisBus[] = []
  const open = (options: { maxLen?: number } = {}): RedisBus => {
    const bus = new RedisBus({ url: redis.url, prefix: 'bus-test:', log, ...options })
    buses.push(bus)
    return bus
  }
  before(async () => { redis = await TempRedis.start() })
  after(async () => {
    await Promise.all(buses.map((b) => b.close()))
    await redis.stop()
  })

  it('delivers updates and awareness to other instances in order, never back to the publisher', async () => {
    const [a, b] = [open(), open()]
    const [onA, onB] = [recorder(), recorder()]
    await a.subscribe('order', onA)
    await b.subscribe('order', onB)
    for (let i = 0; i < 20; i++) await a.publish('order', { kind: i % 2 === 0 ? 'update' : 'awareness', data: bytes(i) })
    await waitFor(() => onB.messages.length === 20, { message: '20 messages on b' })
    assert.deepEqual(onB.messages.map((m) => [m.kind, m.data[0]]), Array.from({ length: 20 }, (_, i) => [i % 2 === 0 ? 'update' : 'awareness', i]))
    assert.equal(onA.messages.length, 0)
  })

  it('multiplexes many rooms on one reader and adds a new room to it at once', async () => {
    const [a, b] = [open(), open()]
    const handlers = Array.from({ length: 30 }, () => recorder())
    for (const [i, handler] of handlers.entries()) {
      await b.subscribe(`many-${i}`, handler)
      await a.publish(`many-${i}`, { kind: 'update', data: bytes(i) })
    }
    await waitFor(() => handlers.every((h, i) => h.messages[0]?.data[0] === i), { timeoutMs: 5000, message: 'every room delivered' })
  })

  it('reports a gap when the stream was trimmed past what it had read, then keeps delivering', async () => {
    const [a, b] = [open({ maxLen: 10 }), open({ maxLen: 10 })]
    const onB = recorder()
    await b.subscribe('trim', onB)
    await a.publish('trim', { kind: 'update', data: bytes(0) })
    await waitFor(() => onB.messages.length === 1, { message: 'first message' })
    // Another process writes 500 entries while this one is stalled (execFileSync blocks the event loop),
    // so b's reader falls far behind and the stream is trimmed past b's last id.
    const lines = Array.from({ length: 500 }, (_, i) => `XADD bus-test:room:trim MAXLEN ~ 10 * i other k u d x${i}`).join('\n')
    execFileSync('redis-cli', ['-p', String(redis.port)], { input: lines + '\n', stdio: ['pipe', 'ignore', 'ignore'] })
    await waitFor(() => onB.gaps >= 1, { timeoutMs: 10_000, message: 'a gap reported' })
    const gaps = onB.gaps
    await a.publish('trim', { kind: 'update', data: bytes(7) })
    await waitFor(() => onB.messages.at(-1)?.data[0] === 7, { message: 'delivery continues after the gap' })
    assert.equal(onB.gaps, gaps, 'no further gap once caught up')
  })

  it('resumes after Redis restarts and reports the gap, and announces publishes that failed meanwhile', async () => {
    const [a, b] = [open(), open()]
    const [onA, onB] = [recorder(), recorder()]
    await a.subscribe('restart', onA)
    await b.subscribe('restart', onB)
    await a.publish('restart', { kind: 'update', data: bytes(1) })
    await waitFor(() => onB.messages.length === 1, { message: 'before the restart' })
    await redis.stop()
    await assert.rejects(a.publish('restart', { kind: 'update', data: bytes(2) }))
    await redis.start()
    // The stream was lost with Redis (no persistence): both must reload from storage.
    await waitFor(() => onB.gaps >= 1 && onA.gaps >= 1, { timeoutMs: 15_000, message: 'gaps reported after the restart' })
    const raw = new Redis(redis.url)
    try {
      await waitFor(async () => (await raw.xrange('bus-test:room:restart', '-', '+')).some(([, fields]) => fields.includes('g')),
        { timeoutMs: 10_000, message: 'a gap entry for the publish that failed' })
    } finally {
      raw.disconnect()
    }
    await a.publish('restart', { kind: 'update', data: bytes(3) })
    await waitFor(() => onB.messages.some((m) => m.data[0] === 3), { timeoutMs: 10_000, message: 'delivery resumes' })
  })
})
