import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import { createLogger } from '../../server/log.js'
import { SyncServer } from '../../server/sync-server.js'
import { signBody, type WebhookPayload } from '../../server/webhooks.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait.js'

interface Delivery {
  readonly headers: IncomingMessage['headers']
  readonly raw: string
  readonly body: WebhookPayload
}

const SECRET = 'webhook-test-secret'

describe('webhooks', () => {
  const deliveries: Delivery[] = []
  /** How the receiver answers, by room: a list of statuses used up in order, then 200; 'hang' never answers. */
  const plans = new Map<string, Array<number | 'hang'>>()
  const hanging = new Set<ServerResponse>()
  let receiver: Server
  let server: SyncServer
  let wsUrl = ''
  const clients: Client[] = []

  before(async () => {
    receiver = createServer((request, response) => {
      let raw = ''
      request.setEncoding('utf8').on('data', (chunk: string) => { raw += chunk })
      request.on('end', () => {
        const body = JSON.parse(raw) as WebhookPayload
        deliveries.push({ headers: request.headers, raw, body })
        const next = plans.get(body.room)?.shift() ?? 200
        if (next === 'hang') {
          hanging.add(response)
          return
        }
        response.writeHead(next).end()
      })
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    server = new SyncServer({
      logger: createLogger('silent'),
      webhook: {
        url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
        secret: SECRET,
        textFields: ['text', 'meta'],
        debounceMs: 300,
        retryBaseMs: 50,
        timeoutMs: 2000,
      },
    })
    const { port } = await server.listen(0)
    wsUrl = `ws://127.0.0.1:${port}`
  })

  after(async () => {
    for (const client of clients) client.destroy()
    await server.close()
    for (const response of hanging) response.destroy()
    receiver.closeAllConnections()
    await new Promise<void>((resolve) => receiver.close(() => resolve()))
  })

  const of = (room: string): Delivery[] => deliveries.filter((d) => d.body.room === room)

  it('posts one signed notice per changed room, coalescing changes within the debounce window', async () => {
    const client = connectClient(wsUrl, 'notes')
    clients.push(client)
    await synced(client)
    client.text.insert(0, 'hello')
    await waitFor(() => server.loadedRoom('notes')?.doc.getText('text').toString() === 'hello', { message: 'first commit' })
    client.text.insert(5, ' world')
    await server.transact('notes', (doc) => doc.getMap('meta').set('title', 'Greeting'))
    await waitFor(() => of('notes').length > 0, { timeoutMs: 10_000, message: 'a webhook POST' })
    const delivery = of('notes')[0]
    assert.equal(of('notes').length, 1, 'changes within one window make one POST')
    assert.equal(delivery!.headers['content-type'], 'application/json')
    const expected = `sha256=${createHmac('sha256', SECRET).update(delivery!.raw).digest('hex')}`
    assert.equal(delivery!.headers['x-signature-256'], expected)
    assert.equal(signBody(SECRET, delivery!.raw), expected)
    const body = delivery!.body
    assert.equal(body.event, 'room.changed')
    assert.equal(body.room, 'notes')
    assert.ok(!Number.isNaN(Date.parse(body.time)))
    assert.ok(body.version >= 'hello world'.length, `version ${body.version}`)
    assert.ok(body.size > 0)
    assert.deepEqual(body.text, { text: 'hello world', meta: '{"title":"Greeting"}' })
  })

  it('posts again for a later change, with a higher version', async () => {
    const first = of('notes')[0]!.body
    await server.transact('notes', (doc) => doc.getText('text').insert(0, '> '))
    await waitFor(() => of('notes').length >= 2, { timeoutMs: 10_000, message: 'a second POST' })
    const second = of('notes')[1]!.body
    assert.ok(second.version > first.version)
    assert.equal(second.text?.text, '> hello world')
  })

  it('retries a failed delivery with backoff until it succeeds', async () => {
    plans.set('flaky', [500, 503])
    await server.transact('flaky', (doc) => doc.getText('text').insert(0, 'x'))
    await waitFor(() => of('flaky').length >= 3, { timeoutMs: 10_000, message: 'three attempts' })
    const attempts = of('flaky')
    assert.equal(attempts.length, 3)
    assert.equal(new Set(attempts.map((a) => a.raw)).size, 1, 'every attempt carries the same body')
    const { body } = await server.metrics.scrape()
    assert.match(body, /yjs_relay_webhook_deliveries_total\{result="ok"\} [1-9]/)
  })

  it('does not retry a delivery the receiver refused with a 4xx', async () => {
    plans.set('refused', [400])
    await server.transact('refused', (doc) => doc.getText('text').insert(0, 'x'))
    await waitFor(() => of('refused').length >= 1, { timeoutMs: 10_000, message: 'one attempt' })
    // A later change of another room is delivered after any retry of this one would have been.
    await server.transact('marker', (doc) => doc.getText('text').insert(0, 'x'))
    await waitFor(() => of('marker').length >= 1, { timeoutMs: 10_000, message: 'the marker POST' })
    assert.equal(of('refused').length, 1)
  })

  it('never holds up sync while the receiver hangs', async () => {
    plans.set('slow', ['hang', 'hang', 'hang'])
    const a = connectClient(wsUrl, 'slow')
    const b = connectClient(wsUrl, 'slow')
    clients.push(a, b)
    await Promise.all([synced(a), synced(b)])
    a.text.insert(0, 'one')
    await waitFor(() => of('slow').length >= 1, { timeoutMs: 10_000, message: 'a hanging POST' })
    // The receiver holds each attempt for its 2 s timeout, three times: sync waiting on it would miss this deadline.
    b.text.insert(0, 'two ')
    await converged([a, b], { expected: 'two one', timeoutMs: 5000 })
  })
})

describe('webhooks from the server program', () => {
  it('are configured by WEBHOOK_* and fire for an update posted over HTTP', async () => {
    const received: Array<{ signature: string | undefined, body: string }> = []
    const receiver = createServer((request, response) => {
      let body = ''
      request.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      request.on('end', () => {
        received.push({ signature: request.headers['x-signature-256'] as string | undefined, body })
        response.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    const dataDir = await mkdtemp(join(tmpdir(), 'relay-webhook-'))
    let server: ServerProcess | null = null
    try {
      server = await startServerProcess({
        DATA_DIR: dataDir,
        WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_TEXT_FIELDS: 'text',
        WEBHOOK_DEBOUNCE_MS: '100',
      })
      const doc = new Y.Doc()
      doc.getText('text').insert(0, 'posted')
      const posted = await fetch(`${server.http}/api/docs/from-http/update`, { method: 'POST', body: Y.encodeStateAsUpdate(doc) })
      assert.equal(posted.status, 200)
      await waitFor(() => received.length > 0, { timeoutMs: 10_000, message: 'the webhook POST' })
      const { signature, body } = received[0]!
      assert.equal(signature, signBody(SECRET, body))
      const payload = JSON.parse(body) as WebhookPayload
      assert.equal(payload.room, 'from-http')
      assert.deepEqual(payload.text, { text: 'posted' })
    } finally {
      await server?.kill('SIGKILL')
      receiver.closeAllConnections()
      await new Promise<void>((resolve) => receiver.close(() => resolve()))
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
