/**
 * Issue 24, finding 6: no token, whole or in part, in any log line or metric label, on every path that
 * logs a request (long-poll 429, 503 at the held-poll limit and while draining, a client leaving
 * mid-body; the document API's internal errors); and a client that leaves mid-body is no server error.
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, describe, it } from 'node:test'
import * as Y from 'yjs'
import { createTokenAuthorize, signToken } from '../../server/tokens.js'
import { MemoryStorage } from '../../server/storage/memory.js'
import { encodePollRequest } from '../../server/transport/long-poll-wire.js'
import { captureLog, piecesIn } from '../helpers/log-capture.js'
import { MiB, watchMemory } from '../helpers/memory.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { storageWith } from '../helpers/storage.js'
import { waitFor } from '../helpers/wait.js'

const SECRET = 'a-secret-of-at-least-16-characters'
const emptyPoll = (): Uint8Array => encodePollRequest(Y.encodeSnapshot(Y.snapshot(new Y.Doc())), new Map())

/** Sends the head of a request and `sent` bytes of a body announced as `declared`, then hangs up. */
const leaveMidBody = async (port: number, path: string, declared: number, sent: number): Promise<void> => {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`)
  socket.write(Buffer.alloc(sent, 1))
  // Long enough for the server to have started reading the body.
  await new Promise((resolve) => setTimeout(resolve, 100))
  socket.destroy()
}

describe('tokens in logs (issue 24, finding 6)', () => {
  const log = captureLog()
  const servers: TestServer[] = []
  const start = async (options: Parameters<typeof startServer>[0] = {}): Promise<TestServer> => {
    const server = await startServer({ logger: log.logger, authorize: createTokenAuthorize({ secret: SECRET }), ...options })
    servers.push(server)
    return server
  }
  after(async () => { for (const server of servers) await server.close() })

  it('writes no token, whole or in part, on any path that logs a request, and a client leaving mid-body is no error', async () => {
    const token = await signToken({ secret: SECRET, room: '*', mode: 'write', ttlSeconds: 3600 })
    const memory = watchMemory()
    const poll = (server: TestServer, room: string, op = 'poll', body = emptyPoll()): Promise<Response> =>
      fetch(`${server.http}/poll/${room}?op=${op}&token=${token}`, { method: 'POST', body })

    // 429: more requests than the address may make.
    const limited = await start({ pollRequestsPerSecond: 1, pollHoldMs: 50 })
    const answers = await Promise.all([1, 2, 3, 4].map(() => poll(limited, 'r429')))
    assert.ok(answers.some((a) => a.status === 429), 'one request is over the rate')
    await Promise.all(answers.map((a) => a.arrayBuffer()))

    // 503 at the held-poll limit, then while draining.
    const small = await start({ maxHeldPolls: 1, pollHoldMs: 5000 })
    const held = poll(small, 'r503')
    await waitFor(() => small.server.heldPolls === 1, { message: 'one held poll' })
    const refused = await poll(small, 'r503')
    assert.equal(refused.status, 503)
    await refused.arrayBuffer()
    await small.server.drain()
    await (await held).arrayBuffer()
    const draining = await poll(small, 'r503')
    assert.equal(draining.status, 503)
    await draining.arrayBuffer()

    // A client that leaves mid-body, on both HTTP endpoints that read one.
    const plain = await start()
    let lines = log.lines.length
    await leaveMidBody(plain.port, `/poll/gone?op=send&token=${token}`, 100_000, 1000)
    await waitFor(() => log.lines.slice(lines).some((l) => l.includes('"gone"') || l.includes('/poll/gone')), { message: 'a log line about the poll that left' })
    lines = log.lines.length
    await leaveMidBody(plain.port, `/api/docs/gone2/update?token=${token}`, 100_000, 1000)
    await waitFor(() => log.lines.slice(lines).some((l) => l.includes('gone2')), { message: 'a log line about the document API request that left' })

    // The document API's internal errors.
    const failing = await start({ storage: storageWith(new MemoryStorage(), { has: () => Promise.reject(new Error('disk on fire')) }) })
    const internal = await fetch(`${failing.http}/api/docs/never?token=${token}`)
    assert.equal(internal.status, 500)
    await internal.arrayBuffer()
    await waitFor(() => log.lines.some((l) => l.includes('never')), { message: 'a log line about the internal error' })

    const growth = memory.stop()
    assert.ok(growth < 64 * MiB, `the servers' memory grew ${(growth / MiB).toFixed(1)} MiB`)
    const leaks = log.lines.filter((line) => piecesIn(line, token).length > 0)
    assert.deepEqual(leaks, [], 'no log line holds any 8 characters of the token')
    const errors = log.lines.filter((line) => line.includes('"severity":"ERROR"'))
    assert.deepEqual(errors.filter((line) => !line.includes('disk on fire')), [], 'only the failing storage is logged as an error')
    for (const server of servers) {
      const metrics = await (await fetch(`${server.http}/metrics`)).text()
      assert.deepEqual(piecesIn(metrics, token), [], 'no metric holds any 8 characters of the token')
      if (server === plain) assert.doesNotMatch(metrics, /yjs_relay_errors_total\{code="INTERNAL"\}/, 'a client leaving mid-body is not an internal error')
    }
  })
})
