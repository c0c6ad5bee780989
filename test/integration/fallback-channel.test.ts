import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { SyncError } from '../../server/errors.js'
import type { Channel, ChannelFactory, ChannelKind } from '../../web/channel.js'
import { fallbackChannel } from '../../web/fallback-channel.js'
import { pollChannel } from '../../web/poll-channel.js'
import { connectChannelClient, type ChannelClient } from '../helpers/channel-client.js'
import { connectClient, synced, type Client } from '../helpers/clients.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'
import { wsChannel } from '../helpers/ws-channel.js'

/** A channel factory whose connections can be made to fail at once or to hang, as a blocked WebSocket does. */
const blockable = (factory: ChannelFactory): { factory: ChannelFactory, mode: 'ok' | 'refuse' | 'hang' } => {
  const control = {
    mode: 'ok' as 'ok' | 'refuse' | 'hang',
    factory: ((target, events) => {
      if (control.mode === 'ok') return factory(target, events)
      let closed = false
      const close = (code: number, reason: string): void => {
        if (closed) return
        closed = true
        setTimeout(() => events.close(code, reason), 0)
      }
      if (control.mode === 'refuse') close(1006, 'blocked')
      const channel: Channel = { kind: 'websocket', send: () => {}, close: (code = 1000, reason = '') => close(code, reason) }
      return channel
    }) as ChannelFactory,
  }
  return control
}

describe('the fallback channel', () => {
  let server: TestServer
  const clients: Array<Client | ChannelClient> = []
  before(async () => {
    server = await startServer({
      pollHoldMs: 2000,
      authorize: (request) => {
        if (request.url?.includes('token=bad') === true) throw new SyncError('UNAUTHENTICATED', 'bad token')
        return { mode: 'write' }
      },
    })
  })
  after(async () => {
    for (const c of clients) c.destroy()
    await server.close()
  })

  it('falls back to polling when WebSocket fails, converges, and returns to WebSocket once it works', async () => {
    const ws = blockable(wsChannel())
    ws.mode = 'refuse'
    const kinds: ChannelKind[] = []
    const factory = fallbackChannel(ws.factory, pollChannel(), { retryPrimaryMs: 300, openTimeoutMs: 2000, onKind: (kind) => kinds.push(kind) })
    const client = connectChannelClient(factory, { serverUrl: server.url, room: 'fallback' })
    const stock = connectClient(server.url, 'fallback')
    clients.push(client, stock)
    await synced(stock)
    await waitFor(() => client.synced && client.kind === 'poll', { message: 'sync over polling' })
    client.text.insert(0, 'polled ')
    stock.text.insert(0, 'stock ')
    await waitFor(() => client.text.length === 13 && client.text.toString() === stock.text.toString(), { message: 'convergence over polling' })

    ws.mode = 'ok'
    await waitFor(() => client.synced && client.kind === 'websocket', { message: 'return to WebSocket' })
    client.text.insert(client.text.length, 'socket')
    await waitFor(() => stock.text.toString() === client.text.toString() && stock.text.toString().includes('socket'), { message: 'convergence over WebSocket' })
    assert.deepEqual(kinds, ['poll', 'websocket'])
  })

  it('comes back over WebSocket after an outage in which polling failed too', async () => {
    const ws = blockable(wsChannel())
    const poll = blockable(pollChannel())
    ws.mode = 'refuse'
    poll.mode = 'refuse'
    const kinds: ChannelKind[] = []
    const factory = fallbackChannel(ws.factory, poll.factory, { retryPrimaryMs: 60_000, openTimeoutMs: 2000, onKind: (kind) => kinds.push(kind) })
    const client = connectChannelClient(factory, { serverUrl: server.url, room: 'outage' })
    clients.push(client)
    // The server is down: both transports fail, and the client keeps retrying.
    await waitFor(() => client.closes.length >= 2, { message: 'attempts fail while the server is down' })
    ws.mode = 'ok'
    poll.mode = 'ok'
    await waitFor(() => client.synced, { message: 'synced once the server is back' })
    assert.deepEqual(kinds, ['websocket'], 'WebSocket, not polling: nothing showed that WebSocket was blocked')
  })

  it('falls back when the WebSocket hangs without opening', async () => {
    const ws = blockable(wsChannel())
    ws.mode = 'hang'
    const client = connectChannelClient(fallbackChannel(ws.factory, pollChannel(), { openTimeoutMs: 200 }), { serverUrl: server.url, room: 'hang' })
    clients.push(client)
    await waitFor(() => client.synced && client.kind === 'poll', { message: 'sync over polling after the open timeout' })
  })

  it('passes a final refusal on instead of falling back', async () => {
    const kinds: ChannelKind[] = []
    const client = connectChannelClient(fallbackChannel(wsChannel(), pollChannel(), { onKind: (kind) => kinds.push(kind) }),
      { serverUrl: server.url, room: 'refused', params: { token: 'bad' } })
    clients.push(client)
    await waitFor(() => client.closes.length > 0, { message: 'a close' })
    assert.equal(client.closes[0]!.code, 4401)
    assert.ok(!kinds.includes('poll'), `kinds: ${kinds.join(', ')}`)
  })

  it('closes a polling client refused by authorize with the error\'s close code', async () => {
    const client = connectChannelClient(pollChannel(), { serverUrl: server.url, room: 'refused', params: { token: 'bad' } })
    clients.push(client)
    await waitFor(() => client.closes.length > 0, { message: 'a close' })
    assert.equal(client.closes[0]!.code, 4401)
    assert.match(client.closes[0]!.reason, /bad token/)
    assert.equal(client.opens, 0)
  })
})
