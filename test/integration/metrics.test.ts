import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createLogger } from '../../server/log.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { SyncServer } from '../../server/sync-server.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { LoopbackHub } from '../helpers/loopback-bus.js'
import { waitFor } from '../helpers/wait.js'

/** Sum of the samples of `name` whose label set contains every `labels` pair. */
const sample = (text: string, name: string, labels: Record<string, string> = {}): number => {
  let total = 0
  let found = false
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const set = match[2] ?? ''
    if (!Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) continue
    found = true
    total += Number(match[3])
  }
  return found ? total : Number.NaN
}

describe('GET /metrics', () => {
  const storage = new MemoryStorage()
  const hub = new LoopbackHub()
  const servers: SyncServer[] = []
  const clients: Client[] = []
  let a: SyncServer
  let urlA = ''
  let urlB = ''

  before(async () => {
    for (let i = 0; i < 2; i++) {
      const server = new SyncServer({ storage, bus: hub.bus(), logger: createLogger('silent') })
      servers.push(server)
      const { port } = await server.listen(0)
      if (i === 0) urlA = `127.0.0.1:${port}`
      else urlB = `127.0.0.1:${port}`
    }
    a = servers[0]!
  })

  after(async () => {
    for (const client of clients) client.destroy()
    for (const server of servers) await server.close()
  })

  it('reports every family with non-zero values after clients sync, fail and close', async () => {
    const one = connectClient(`ws://${urlA}`, 'metered')
    const two = connectClient(`ws://${urlB}`, 'metered')
    clients.push(one, two)
    await Promise.all([synced(one), synced(two)])
    one.text.insert(0, 'from a ')
    two.text.insert(0, 'from b ')
    await converged([one, two])

    const bad = await fetch(`http://${urlA}/api/docs/metered/update`, { method: 'POST', body: new Uint8Array([1, 2, 3, 4, 5]) })
    assert.equal(bad.status, 422)

    const leaving = connectClient(`ws://${urlA}`, 'metered')
    clients.push(leaving)
    await synced(leaving)
    leaving.provider.disconnect()
    await waitFor(async () => {
      const text = await (await fetch(`http://${urlA}/metrics`)).text()
      return sample(text, 'yjs_relay_closes_total') > 0
    }, { timeoutMs: 10_000, message: 'a counted close' })

    const response = await fetch(`http://${urlA}/metrics`)
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = await response.text()
    const expectPositive = (name: string, labels: Record<string, string> = {}): void => {
      const value = sample(text, name, labels)
      assert.ok(value > 0, `${name}${JSON.stringify(labels)} should be > 0, got ${value}\n${text}`)
    }
    expectPositive('yjs_relay_connections', { transport: 'websocket' })
    expectPositive('yjs_relay_rooms_loaded')
    expectPositive('yjs_relay_messages_total', { transport: 'websocket', direction: 'in' })
    expectPositive('yjs_relay_messages_total', { transport: 'websocket', direction: 'out' })
    expectPositive('yjs_relay_bytes_total', { transport: 'websocket', direction: 'in' })
    expectPositive('yjs_relay_bytes_total', { transport: 'websocket', direction: 'out' })
    expectPositive('yjs_relay_storage_commit_seconds_count')
    expectPositive('yjs_relay_update_apply_seconds_count')
    expectPositive('yjs_relay_bus_lag_seconds_count')
    expectPositive('yjs_relay_closes_total')
    expectPositive('yjs_relay_errors_total', { code: 'BAD_UPDATE' })
    assert.ok(sample(text, 'yjs_relay_bytes_total', { direction: 'in' }) >= sample(text, 'yjs_relay_messages_total', { direction: 'in' }))

    // Each server has a registry of its own: B saw no bad request.
    const textB = await (await fetch(`http://${urlB}/metrics`)).text()
    assert.ok(Number.isNaN(sample(textB, 'yjs_relay_errors_total', { code: 'BAD_UPDATE' })), 'server B must not report A\'s errors')
    assert.ok(sample(textB, 'yjs_relay_bus_lag_seconds_count') > 0)
  })

  it('counts refused connections as errors and closes by code', async () => {
    const server = new SyncServer({
      logger: createLogger('silent'),
      authorize: () => { throw new (class extends Error {})('nope') },
    })
    servers.push(server)
    const { port } = await server.listen(0)
    const client = connectClient(`ws://127.0.0.1:${port}`, 'refused')
    clients.push(client)
    await waitFor(async () => sample(await server.metrics.scrape().then((s) => s.body), 'yjs_relay_closes_total', { code: '1011' }) > 0,
      { timeoutMs: 10_000, message: 'a close with 1011' })
    client.provider.disconnect()
    const { body } = await server.metrics.scrape()
    assert.ok(sample(body, 'yjs_relay_errors_total', { code: 'INTERNAL' }) > 0)
  })

  it('with a token, answers only requests that carry it (401 naming the header otherwise)', async () => {
    const token = 'metrics-token-0123456789'
    const server = new SyncServer({ logger: createLogger('silent'), metricsToken: token })
    servers.push(server)
    const { port } = await server.listen(0)
    const url = `http://127.0.0.1:${port}/metrics`
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', token, `Basic ${token}`]) {
      const response = await fetch(url, { headers: authorization === undefined ? {} : { authorization } })
      assert.equal(response.status, 401, `authorization ${authorization}`)
      assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="metrics"')
      assert.match(await response.text(), /Authorization: Bearer <METRICS_TOKEN>/)
    }
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(response.status, 200)
    assert.match(await response.text(), /yjs_relay_connections/)
  })
})
