/**
 * Issue 24, finding 5: partly received input has an overall bound. Unfinished WebSocket messages and
 * request bodies count against one instance-wide budget (past it, new large input is refused with 1013 or
 * 503), each has a time limit, the document API has a per-address limit, and a read-only client's large
 * long-poll send is refused before its body is read.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { MiB, watchMemory } from '../helpers/memory.js'
import { rawRequest } from '../helpers/raw-http.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { once, waitFor } from '../helpers/wait.js'

const BUDGET = 2 * MiB

/** A socket that sends fragments of one message and never its last one; resolves once open. */
const openSocket = async (server: TestServer, room: string): Promise<{ ws: WebSocket, closed: Promise<number>, frames: Buffer[] }> => {
  const ws = new WebSocket(`${server.url}/${room}`)
  ws.on('error', () => {})
  const frames: Buffer[] = []
  ws.on('message', (data: Buffer) => frames.push(data))
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
  await once(ws, 'open')
  return { ws, closed, frames }
}

const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => Promise.race([
  promise,
  new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms).unref()),
])

const sendFragment = (ws: WebSocket, bytes: number): Promise<void> => new Promise((resolve) => {
  if (ws.readyState !== WebSocket.OPEN) return resolve()
  ws.send(Buffer.alloc(bytes, 7), { binary: true, fin: false }, () => resolve())
})

describe('partly received input (issue 24, finding 5)', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({
      maxUnfinishedInputBytes: BUDGET,
      inputTimeoutMs: 1500,
      pingIntervalMs: 100,
      docRequestsPerSecond: 2,
      authorize: (request) => ({ mode: request.url?.includes('reader') === true ? 'read' : 'write' }),
    })
  })
  after(() => server.close())

  it('holds unfinished WebSocket messages within the instance budget and refuses more with 1013', async () => {
    const memory = watchMemory()
    const sockets = await Promise.all([1, 2, 3, 4, 5, 6].map(() => openSocket(server, 'fragments')))
    try {
      // Each socket sends 600 KiB of a message it never finishes: 3.6 MiB in all, over the 2 MiB budget.
      for (let i = 0; i < 6; i++) await Promise.all(sockets.map(({ ws }) => sendFragment(ws, 100 * 1024)))
      const codes = await waitFor(async () => {
        const closed = await Promise.all(sockets.map(({ closed }) => Promise.race([closed, Promise.resolve(null)])))
        return closed.filter((code) => code !== null).length >= 2 ? closed : null
      }, { message: 'sockets over the budget closed' })
      assert.ok(codes.filter((code) => code === 1013).length >= 2, `over the budget closes with 1013, got ${codes.join(',')}`)
      assert.ok(server.server.unfinishedInputBytes <= BUDGET, `held ${server.server.unfinishedInputBytes} bytes, over the budget`)
      assert.ok(server.server.unfinishedInputBytes >= 600 * 1024, 'the sockets within the budget are counted')
      const gauge = /yjs_relay_unfinished_input_bytes (\d+)/.exec(await (await fetch(`${server.http}/metrics`)).text())
      assert.equal(Number(gauge?.[1]), server.server.unfinishedInputBytes, '/metrics reports what is held')
      // Small input still passes while the budget is full: a fresh client syncs.
      const fresh = await openSocket(server, 'fragments')
      fresh.ws.send(new Uint8Array([0, 0, 1, 0]))
      await waitFor(() => fresh.frames.some((frame) => frame[0] === 0 && frame[1] === 1), { message: 'a step 2 for the fresh client' })
      fresh.ws.close()
      // The unfinished messages time out (1008) even though their sockets answer every ping.
      const late = await within(Promise.all(sockets.map(({ closed }) => closed)), 10_000, 'the unfinished messages to time out')
      assert.ok(late.filter((code) => code === 1008).length >= 1, `an unfinished message times out with 1008, got ${late.join(',')}`)
      await waitFor(() => server.server.unfinishedInputBytes === 0, { message: 'the budget emptied' })
      const growth = memory.stop()
      assert.ok(growth < 64 * MiB, `the server's memory grew ${(growth / MiB).toFixed(1)} MiB`)
    } finally {
      for (const { ws } of sockets) ws.terminate()
    }
  })

  it('gives each message the whole time limit, even when the next one starts right after it', async () => {
    const { ws } = await openSocket(server, 'stream')
    try {
      // A query-awareness padded with bytes the server ignores, sent in two fragments 0.9 s apart, twice:
      // 1.8 s with a message under way, over the limit of 1.5 s, but no message takes more than 0.9 s.
      const head = Buffer.concat([Buffer.from([3]), Buffer.alloc(10_000, 7)])
      const tail = Buffer.alloc(10_000, 7)
      const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 900))
      ws.send(head, { binary: true, fin: false })
      await pause()
      ws.send(tail, { binary: true, fin: true })
      ws.send(head, { binary: true, fin: false })
      await pause()
      ws.send(tail, { binary: true, fin: true })
      await waitFor(() => server.server.unfinishedInputBytes === 0, { message: 'the second message complete' })
      assert.equal(ws.readyState, WebSocket.OPEN)
    } finally {
      ws.terminate()
    }
  })

  it('refuses a body past the budget with 503 before reading it, and times out a slow one with 408', async () => {
    const memory = watchMemory()
    const first = await rawRequest(server.port, 'POST', '/api/docs/slow/update', { 'content-length': 1.5 * MiB })
    first.write(Buffer.alloc(1000, 1))
    await waitFor(() => server.server.unfinishedInputBytes >= 1.5 * MiB, { message: 'the first body held in the budget' })
    const second = await rawRequest(server.port, 'POST', '/poll/slow?op=send', { 'content-length': 1 * MiB })
    assert.equal(await second.status, 503, 'a body past the budget is refused before it is read')
    second.destroy()
    // A small one passes all the same.
    const small = await fetch(`${server.http}/poll/slow?op=send`, { method: 'POST', body: new Uint8Array(0) })
    assert.equal(small.status, 200)
    await small.arrayBuffer()
    assert.equal(await first.status, 408, 'the body that never completes times out')
    first.destroy()
    await waitFor(() => server.server.unfinishedInputBytes === 0, { message: 'the budget emptied' })
    assert.ok(memory.stop() < 32 * MiB)
  })

  it('refuses a read-only client\'s large long-poll send before reading its body', async () => {
    const request = await rawRequest(server.port, 'POST', '/poll/ro?op=send&token=reader', { 'content-length': 4 * MiB })
    assert.equal(await request.status, 403)
    assert.equal(server.server.unfinishedInputBytes, 0)
    request.destroy()
  })

  it('limits document API requests per client address (429)', async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => fetch(`${server.http}/api/docs/limited`)))
    const statuses = answers.map((a) => a.status)
    await Promise.all(answers.map((a) => a.arrayBuffer()))
    assert.ok(statuses.includes(429), `got ${statuses.join(',')}`)
    const refused = answers.find((a) => a.status === 429)!
    assert.equal(refused.headers.get('retry-after'), '1')
  })
})
