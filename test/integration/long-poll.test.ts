import assert from 'node:assert/strict'
import { after, afterEach, before, describe, it } from 'node:test'
import { WebSocket } from 'ws'
import * as Y from 'yjs'
import * as protocol from '../../server/protocol.js'
import * as awarenessProtocol from 'y-protocols/awareness'
import { MemoryStorage } from '../../server/storage/memory.js'
import type { Storage } from '../../server/storage/storage.js'
import { decodeFrames, encodeFrames, encodePollRequest } from '../../server/transport/long-poll-wire.js'
import { pollChannel } from '../../web/poll-channel.js'
import { connectChannelClient, type ChannelClient } from '../helpers/channel-client.js'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { dependentUpdates, forgedItem } from '../helpers/updates.js'
import { waitFor } from '../helpers/wait.js'

const post = (server: TestServer, room: string, op: string, body: Uint8Array, query = ''): Promise<Response> =>
  fetch(`${server.http}/poll/${room}?op=${op}${query}`, { method: 'POST', body })

const emptyPoll = (doc = new Y.Doc()): Uint8Array => encodePollRequest(Y.encodeSnapshot(Y.snapshot(doc)), new Map())

/** Holds two polls on `room`, checks that a third is answered 503 with Retry-After 2 and `reason`, and returns the two held. */
const holdTwoRefuseThird = async (server: TestServer, room: string, reason: RegExp): Promise<Array<Promise<Response>>> => {
  const held = [post(server, room, 'poll', emptyPoll()), post(server, room, 'poll', emptyPoll())]
  await waitFor(() => server.server.heldPolls === 2, { message: 'two held polls' })
  const refused = await post(server, room, 'poll', emptyPoll())
  assert.equal(refused.status, 503)
  assert.equal(refused.headers.get('retry-after'), '2')
  assert.match(await refused.text(), reason)
  return held
}

const editUpdate = (text: string): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('text').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

describe('long-polling clients', () => {
  let server: TestServer
  const stock: Client[] = []
  const polling: ChannelClient[] = []
  const pollClient = (room: string, params: Record<string, string> = {}): ChannelClient => {
    const c = connectChannelClient(pollChannel(), { serverUrl: server.url, room, params })
    polling.push(c)
    return c
  }
  const wsClient = (room: string): Client => {
    const c = connectClient(server.url, room)
    stock.push(c)
    return c
  }

  before(async () => {
    server = await startServer({
      pollHoldMs: 2000,
      authorize: (request) => ({ mode: request.url?.includes('token=reader') === true ? 'read' : 'write' }),
    })
  })
  after(async () => {
    for (const c of [...stock, ...polling]) c.destroy()
    await server.close()
  })

  it('converge with a stock y-websocket client both ways, and awareness crosses both ways', async () => {
    const ws = wsClient('mixed')
    const poll = pollClient('mixed')
    await synced(ws)
    await waitFor(() => poll.synced, { message: 'poll client sync' })
    poll.text.insert(0, 'from poll. ')
    await converged([ws, { text: poll.text } as Client], { expected: 'from poll. ' })
    ws.text.insert(ws.text.length, 'from ws.')
    await converged([ws, { text: poll.text } as Client], { expected: 'from poll. from ws.' })

    poll.awareness.setLocalStateField('user', { name: 'poller' })
    ws.provider.awareness.setLocalStateField('user', { name: 'socket' })
    await waitFor(() => (ws.provider.awareness.getStates().get(poll.doc.clientID) as { user?: { name: string } } | undefined)?.user?.name === 'poller',
      { message: 'the socket client seeing the poll client\'s awareness' })
    await waitFor(() => (poll.awareness.getStates().get(ws.doc.clientID) as { user?: { name: string } } | undefined)?.user?.name === 'socket',
      { message: 'the poll client seeing the socket client\'s awareness' })
    // A removal reaches the poll client too (the socket client leaves).
    ws.provider.disconnect()
    await waitFor(() => !poll.awareness.getStates().has(ws.doc.clientID), { message: 'awareness removal at the poll client' })
  })

  it('give a late poll client the full state, deletions included', async () => {
    const ws = wsClient('late-poll')
    await synced(ws)
    ws.text.insert(0, 'hello cruel world')
    ws.text.delete(6, 6)
    await waitFor(() => server.server.loadedRoom('late-poll')?.doc.getText('text').toString() === 'hello world', { message: 'server state' })
    const poll = pollClient('late-poll')
    await waitFor(() => poll.text.toString() === 'hello world', { message: 'late poll client state' })
    // A deletion alone does not move the state vector: it still reaches a held poll.
    await waitFor(() => server.server.heldPolls >= polling.length, { message: 'every poll client waiting in a held poll' })
    ws.text.delete(0, 6)
    await waitFor(() => poll.text.toString() === 'world', { message: 'a deletion reaching the poll client' })
  })

  it('hold a poll until the room changes, and answer it empty after the hold time', async () => {
    const room = 'held'
    const started = Date.now()
    const answer = await post(server, room, 'poll', emptyPoll())
    assert.equal(answer.status, 200)
    assert.equal((await answer.arrayBuffer()).byteLength, 0)
    assert.ok(Date.now() - started >= 1500, `answered after ${Date.now() - started} ms`)

    const pending = post(server, room, 'poll', emptyPoll())
    await waitFor(() => server.server.heldPolls > 0, { message: 'a held poll' })
    const sent = await post(server, room, 'send', encodeFrames([protocol.encodeSyncUpdate(editUpdate('x'))]))
    assert.equal(sent.status, 200)
    const frames = decodeFrames(new Uint8Array(await (await pending).arrayBuffer()))
    const doc = new Y.Doc()
    for (const frame of frames) {
      const message = protocol.decodeMessage(frame)
      if (message.type === 'sync-update') Y.applyUpdate(doc, message.update)
    }
    assert.equal(doc.getText('text').toString(), 'x')
  })

  it('free a held poll\'s slot when its client goes away', async () => {
    const alone = await startServer()
    try {
      const abort = new AbortController()
      const pending = fetch(`${alone.http}/poll/abandoned?op=poll`, { method: 'POST', body: emptyPoll(), signal: abort.signal }).catch(() => null)
      await waitFor(() => alone.server.heldPolls === 1, { message: 'the poll held' })
      abort.abort()
      await pending
      await waitFor(() => alone.server.heldPolls === 0, { message: 'the slot freed' })
    } finally {
      await alone.close()
    }
  })

  it('answer a sync step 1 with step 2 and the server\'s step 1', async () => {
    await server.server.transact('handshake', (doc) => doc.getText('text').insert(0, 'abc'))
    const res = await post(server, 'handshake', 'send', encodeFrames([protocol.encodeSyncStep1(Y.encodeStateVector(new Y.Doc()))]))
    assert.equal(res.status, 200)
    const messages = decodeFrames(new Uint8Array(await res.arrayBuffer())).map(protocol.decodeMessage)
    assert.deepEqual(messages.map((m) => m.type), ['sync-step2', 'sync-step1'])
  })

  it('answer an update that depends on content the room lacks with the server\'s step 1, and store nothing of it', async () => {
    const { second: dependent, both } = dependentUpdates('a', 'b')
    const res = await post(server, 'dependent', 'send', encodeFrames([protocol.encodeSyncUpdate(dependent)]))
    assert.equal(res.status, 200)
    const messages = decodeFrames(new Uint8Array(await res.arrayBuffer())).map(protocol.decodeMessage)
    assert.deepEqual(messages.map((m) => m.type), ['sync-step1'])
    assert.equal(server.server.loadedRoom('dependent')?.doc.getText('text').toString() ?? '', '')
    // What the client sends once asked: everything the room's state vector does not cover.
    const answer = await post(server, 'dependent', 'send', encodeFrames([protocol.encodeSyncStep2(both)]))
    assert.equal(answer.status, 200)
    assert.equal(server.server.loadedRoom('dependent')?.doc.getText('text').toString(), 'ab')
  })

  it('echo a send\'s awareness in its answer, as a socket echoes it', async () => {
    const awareness = new awarenessProtocol.Awareness(new Y.Doc())
    const send = async (): Promise<protocol.Message[]> => {
      const res = await post(server, 'echo', 'send', encodeFrames([protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(awareness, [awareness.clientID]))]))
      return decodeFrames(new Uint8Array(await res.arrayBuffer())).map(protocol.decodeMessage)
    }
    const clockOf = (): number => awareness.meta.get(awareness.clientID)!.clock
    try {
      awareness.setLocalStateField('user', 'echo')
      // First sight: the room raised the clock, and says so as a removal of the client's own state, which
      // y-protocols answers by keeping the state and moving the client's clock past the room's.
      const [first] = await send()
      assert.ok(first?.type === 'awareness')
      const before = clockOf()
      awarenessProtocol.applyAwarenessUpdate(awareness, first.update, 'server')
      assert.deepEqual(awareness.getLocalState(), { user: 'echo' })
      assert.ok(clockOf() > before + 1, 'the client moved past the raised clock')
      // Announced at that clock, the state is echoed as it is.
      const [second] = await send()
      assert.ok(second?.type === 'awareness')
      const echo = new awarenessProtocol.Awareness(new Y.Doc())
      try {
        awarenessProtocol.applyAwarenessUpdate(echo, second.update, 'test')
        assert.deepEqual(echo.getStates().get(awareness.clientID), { user: 'echo' })
      } finally {
        echo.destroy()
      }
    } finally {
      awareness.destroy()
    }
  })

  it('count polls and their frames in the metrics', async () => {
    await post(server, 'metrics', 'send', encodeFrames([protocol.encodeSyncStep1(Y.encodeStateVector(new Y.Doc()))]))
    const text = await (await fetch(`${server.http}/metrics`)).text()
    assert.match(text, /yjs_relay_messages_total\{transport="poll",direction="in"\} [1-9]/)
    assert.match(text, /yjs_relay_messages_total\{transport="poll",direction="out"\} [1-9]/)
    assert.match(text, /yjs_relay_connections\{transport="poll"\} \d/)
  })

  it('let read-only clients receive, and refuse their updates with permission denied, as a socket does', async () => {
    const writer = wsClient('read-only')
    await synced(writer)
    writer.text.insert(0, 'visible')
    const reader = pollClient('read-only', { token: 'reader' })
    await waitFor(() => reader.text.toString() === 'visible', { message: 'reader state' })
    const res = await post(server, 'read-only', 'send', encodeFrames([protocol.encodeSyncUpdate(editUpdate('nope'))]), '&token=reader')
    assert.equal(res.status, 200)
    assert.deepEqual(decodeFrames(new Uint8Array(await res.arrayBuffer())).map(protocol.decodeMessage), [{ type: 'auth', denied: true, reason: 'read-only access' }])
    reader.text.insert(0, 'local ')
    await waitFor(() => reader.denied.length > 0, { message: 'the reader\'s channel told its edit was refused' })
    writer.text.insert(7, '!')
    await waitFor(() => reader.text.toString() === 'local visible!', { message: 'the reader still receiving' })
    assert.deepEqual(reader.closes, [], 'the channel stayed open')
    assert.equal(server.server.loadedRoom('read-only')?.doc.getText('text').toString(), 'visible!')
    assert.equal(writer.text.toString(), 'visible!')
  })

  it('answer 503 with Retry-After past the held-poll limit', async () => {
    const limited = await startServer({ maxHeldPolls: 2, pollHoldMs: 5000 })
    try {
      const held = await holdTwoRefuseThird(limited, 'full', /OVERLOADED/)
      await limited.server.drain()
      for (const answer of await Promise.all(held)) assert.equal(answer.status, 200)
      const draining = await post(limited, 'full', 'poll', emptyPoll())
      assert.equal(draining.status, 503)
      assert.match(await draining.text(), /SHUTTING_DOWN/)
    } finally {
      await limited.close()
    }
  })
})

describe('long-poll connection limits', () => {
  it('count a held poll as a connection of its address and room, shared with sockets', async () => {
    const limited = await startServer({ maxConnectionsPerIp: 2, pollHoldMs: 5000 })
    try {
      const held = await holdTwoRefuseThird(limited, 'slots', /OVERLOADED: too many connections from this address/)
      // A socket from the same address finds no slot either: HTTP 503 before the upgrade.
      const socket = new WebSocket(`${limited.url}/slots`)
      const status = await new Promise<number>((resolve) => socket.once('unexpected-response', (_req, res) => resolve(res.statusCode!)))
      assert.equal(status, 503)
      await limited.server.drain()
      for (const answer of await Promise.all(held)) assert.equal(answer.status, 200)
    } finally {
      await limited.close()
    }
  })

  it('give the slot back when a held poll is answered', async () => {
    const limited = await startServer({ maxConnectionsPerIp: 1, pollHoldMs: 300 })
    try {
      for (let i = 0; i < 3; i++) {
        const answer = post(limited, 'one-slot', 'poll', emptyPoll())
        await waitFor(() => limited.server.heldPolls === 1, { message: `poll ${i} held` })
        assert.equal((await answer).status, 200, `poll ${i}, held after the previous one was answered`)
      }
    } finally {
      await limited.close()
    }
  })
})

describe('long-poll request rate', () => {
  it('answer 429 with Retry-After past an address\'s request rate, and keep serving other addresses', async () => {
    const limited = await startServer({ pollRequestsPerSecond: 1, trustProxy: 1 })
    try {
      const send = (address: string): Promise<Response> =>
        fetch(`${limited.http}/poll/rated?op=send`, { method: 'POST', body: encodeFrames([]), headers: { 'x-forwarded-for': address } })
      // A burst of twice the rate: of five requests at once, two pass and three are refused.
      const answers = await Promise.all(Array.from({ length: 5 }, () => send('10.0.0.1')))
      assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 429, 429, 429])
      const refused = answers.find((a) => a.status === 429)!
      assert.equal(refused.headers.get('retry-after'), '1')
      assert.equal(refused.headers.get('x-error-code'), 'RATE_LIMITED')
      assert.match(await refused.text(), /RATE_LIMITED: more long-poll requests from 10\.0\.0\.1/)
      assert.equal((await send('10.0.0.2')).status, 200, 'another address has its own budget')
    } finally {
      await limited.close()
    }
  })

  it('let a poll client refused with 429 wait it out and sync, opening and open, without closing', async () => {
    const limited = await startServer({ pollRequestsPerSecond: 1 })
    try {
      // Spend the address's burst, then connect a client: its first requests are refused, and it waits them out.
      for (let i = 0; i < 2; i++) await post(limited, 'retry', 'send', encodeFrames([]))
      const client = connectChannelClient(pollChannel({ maxFailures: 10 }), { serverUrl: limited.url, room: 'retry' })
      try {
        const refusals = async (): Promise<number> => {
          const text = await (await fetch(`${limited.http}/metrics`)).text()
          return Number(/yjs_relay_errors_total\{code="RATE_LIMITED"\} (\d+)/.exec(text)?.[1] ?? 0)
        }
        await waitFor(() => client.synced, { timeoutMs: 15_000, message: 'the poll client synced after its 429s' })
        assert.ok(await refusals() > 0, 'the opening request was refused at first')
        for (let i = 0; i < 2; i++) await post(limited, 'retry', 'send', encodeFrames([]))
        const before = await refusals()
        client.text.insert(0, 'sent after a 429')
        const handle = await limited.server.openRoom('retry')
        try {
          await waitFor(() => handle.doc.getText('text').toString() === 'sent after a 429', { timeoutMs: 15_000, message: 'the edit reached the server' })
        } finally {
          handle.release()
        }
        assert.ok(await refusals() > before, 'a request of the open channel was refused meanwhile')
        assert.deepEqual(client.closes, [], 'the channel waited every 429 out without closing')
      } finally {
        client.destroy()
      }
    } finally {
      await limited.close()
    }
  })
})

describe('long-poll requests with bad input', () => {
  let server: TestServer
  let storage: MemoryStorage
  before(async () => {
    storage = new MemoryStorage()
    server = await startServer({ storage, maxMessageBytes: 4096, pollHoldMs: 200 })
  })
  after(async () => { await server.close() })

  const good = protocol.encodeSyncUpdate(editUpdate('must not land'))
  const cases: Array<{ name: string, op: string, body: Uint8Array, status: number, text: RegExp }> = [
    { name: 'a truncated frame list', op: 'send', body: encodeFrames([good]).subarray(0, 5), status: 400, text: /BAD_MESSAGE: truncated body/ },
    { name: 'an unknown message type', op: 'send', body: encodeFrames([good, new Uint8Array([9, 1])]), status: 400, text: /unknown message type 9/ },
    { name: 'an update Yjs cannot decode', op: 'send', body: encodeFrames([good, protocol.encodeSyncUpdate(new Uint8Array([5, 200, 1, 2]))]), status: 422, text: /BAD_UPDATE/ },
    { name: 'a bad state vector in sync step 1', op: 'send', body: encodeFrames([good, protocol.encodeSyncStep1(new Uint8Array([4, 0xff]))]), status: 400, text: /bad state vector/ },
    { name: 'awareness that is not JSON', op: 'send', body: encodeFrames([good, protocol.encodeAwareness(new Uint8Array([1, 5, 1, 1, 0x7b]))]), status: 400, text: /not JSON/ },
    { name: 'awareness that is not UTF-8', op: 'send', body: encodeFrames([good, protocol.encodeAwareness(new Uint8Array([1, 5, 1, 1, 0xff]))]), status: 400, text: /not UTF-8/ },
    { name: 'a poll with a bad state vector', op: 'poll', body: new Uint8Array([3, 0xff, 0xff, 0xff, 0]), status: 400, text: /bad state vector/ },
    { name: 'a poll with trailing bytes', op: 'poll', body: new Uint8Array([...emptyPoll(), 1]), status: 400, text: /unexpected bytes/ },
    { name: 'an unknown op', op: 'other', body: encodeFrames([good]), status: 400, text: /op= must be/ },
    { name: 'an oversized body', op: 'send', body: encodeFrames([protocol.encodeSyncUpdate(editUpdate('x'.repeat(5000)))]), status: 413, text: /MESSAGE_TOO_BIG/ },
  ]
  for (const c of cases) {
    it(`answer ${c.name} with ${c.status} and a message, and change nothing`, async () => {
      const res = await post(server, 'bad', c.op, c.body)
      assert.equal(res.status, c.status)
      assert.match(await res.text(), c.text)
      assert.ok(res.headers.get('x-error-code'))
      assert.equal(await storage.has('bad'), false)
      assert.equal(server.server.loadedRoom('bad')?.doc.getText('text').toString() ?? '', '')
    })
  }

  it('answer a body whose second update has forged origins with 422, and store neither update', async () => {
    const held = new Y.Doc()
    held.clientID = 5
    held.getText('text').insert(0, 'abc')
    assert.equal((await post(server, 'forged', 'send', encodeFrames([protocol.encodeSyncUpdate(Y.encodeStateAsUpdate(held))]))).status, 200)
    const rowsBefore = (await storage.load('forged')).updates.length
    const b = Y.createID(5, 1)
    const res = await post(server, 'forged', 'send', encodeFrames([good, protocol.encodeSyncUpdate(forgedItem(6, b, b, 'X'))]))
    assert.equal(res.status, 422)
    assert.match(await res.text(), /BAD_UPDATE: update holds an item whose right origin is not right of its origin/)
    await server.server.loadedRoom('forged')!.flushed()
    assert.equal((await storage.load('forged')).updates.length, rowsBefore)
    assert.equal(server.server.loadedRoom('forged')!.doc.getText('text').toString(), 'abc')
  })

  it('answer an oversized body sent without a length with 413', async () => {
    const chunks = [encodeFrames([protocol.encodeSyncUpdate(editUpdate('y'.repeat(6000)))])]
    const stream = new ReadableStream({ start (controller) { for (const c of chunks) controller.enqueue(c); controller.close() } })
    const res = await fetch(`${server.http}/poll/bad?op=send`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit)
    assert.equal(res.status, 413)
    assert.equal(await storage.has('bad'), false)
  })

  it('answer other methods with 405 and a URL without a room with 400', async () => {
    const get = await fetch(`${server.http}/poll/bad?op=poll`)
    assert.equal(get.status, 405)
    assert.equal(get.headers.get('allow'), 'POST')
    assert.match(await get.text(), /POST only/)
    const noRoom = await fetch(`${server.http}/poll/?op=poll`, { method: 'POST', body: emptyPoll() })
    assert.equal(noRoom.status, 400)
    assert.match(await noRoom.text(), /BAD_ROOM/)
  })

  it('keep serving good requests after bad ones', async () => {
    const res = await post(server, 'bad-then-good', 'send', encodeFrames([protocol.encodeSyncUpdate(editUpdate('fine'))]))
    assert.equal(res.status, 200)
    assert.equal(await storage.has('bad-then-good'), true)
  })
})

describe('long-poll durability', () => {
  let server: TestServer | null = null
  afterEach(async () => { await server?.close() })

  it('answer a send 503 with Retry-After when storage fails, and apply nothing', async () => {
    const storage = new MemoryStorage()
    let failing = false
    const flaky: Storage = {
      load: (room) => storage.load(room),
      append: async (entries) => {
        if (failing) throw new Error('disk on fire')
        return storage.append(entries)
      },
      compact: (room) => storage.compact(room),
      has: (room) => storage.has(room),
      check: () => storage.check(),
      close: () => storage.close(),
    }
    server = await startServer({ storage: flaky })
    // Loaded first, so that the failure is the commit's and not the load's.
    await server.server.transact('flaky', () => {})
    failing = true
    const res = await post(server, 'flaky', 'send', encodeFrames([protocol.encodeSyncUpdate(editUpdate('lost?'))]))
    assert.equal(res.status, 503)
    assert.equal(res.headers.get('retry-after'), '1')
    assert.match(await res.text(), /STORAGE_UNAVAILABLE/)
    assert.equal(server.server.loadedRoom('flaky')?.doc.getText('text').toString(), '')
    failing = false
    const retried = await post(server, 'flaky', 'send', encodeFrames([protocol.encodeSyncUpdate(editUpdate('kept'))]))
    assert.equal(retried.status, 200)
    assert.equal(server.server.loadedRoom('flaky')?.doc.getText('text').toString(), 'kept')
  })

  it('drop the awareness of a poll client that stopped polling after the 30 s awareness timeout', { timeout: 60_000 }, async () => {
    server = await startServer()
    const ws = connectClient(server.url, 'expiry')
    const poll = connectChannelClient(pollChannel(), { serverUrl: server.url, room: 'expiry' })
    try {
      await synced(ws)
      poll.awareness.setLocalStateField('user', 'gone soon')
      await waitFor(() => ws.provider.awareness.getStates().has(poll.doc.clientID), { message: 'awareness arriving' })
      const stoppedAt = Date.now()
      poll.destroy()
      await waitFor(() => !ws.provider.awareness.getStates().has(poll.doc.clientID), { timeoutMs: 45_000, message: 'awareness expiry' })
      const after = Date.now() - stoppedAt
      assert.ok(after > 25_000 && after < 40_000, `expired after ${after} ms`)
    } finally {
      ws.destroy()
    }
  })
})

