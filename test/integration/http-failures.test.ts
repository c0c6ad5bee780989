/**
 * Every HTTP endpoint turns an error into an answer the same way (server/transport/failures.ts), and
 * reads a body the same way (server/transport/request-body.ts).
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '../../server/log.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

describe('HTTP failures', () => {
  let server: TestServer
  const lines: Array<{ severity: string, message: string, url?: unknown, [key: string]: unknown }> = []
  before(async () => {
    const sink = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(JSON.parse(chunk.toString())); done() } })
    server = await startServer({ logger: createLogger('debug', sink) })
  })
  after(async () => { await server.close() })

  for (const path of ['/poll/cut?op=send&token=secret', '/api/docs/cut/update?token=secret']) {
    it(`${path.split('?')[0]}: a client that leaves mid-body is no error: logged at debug, without the query string`, async () => {
      const before = lines.length
      const socket = connect(server.port, '127.0.0.1')
      await new Promise((resolve) => socket.once('connect', resolve))
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`)
      socket.end()
      const pathOnly = path.split('?')[0]!
      const about = (line: { url?: unknown }): boolean => typeof line.url === 'string' && line.url.startsWith(pathOnly)
      await waitFor(() => lines.slice(before).some(about), { message: 'the server noting the client left' })
      const logged = lines.slice(before).filter(about)
      assert.deepEqual(logged.map((line) => line.severity), ['DEBUG'])
      assert.doesNotMatch(JSON.stringify(logged), /secret/)
      assert.ok(lines.slice(before).every((line) => line.severity === 'DEBUG' || line.severity === 'INFO'), JSON.stringify(lines.slice(before)))
    })
  }

  it('answers every endpoint\'s refusal with its code in the body and in x-error-code', async () => {
    const poll = await fetch(`${server.http}/poll/r?op=nope`, { method: 'POST', body: new Uint8Array() })
    assert.equal(poll.status, 400)
    assert.equal(poll.headers.get('x-error-code'), 'BAD_MESSAGE')
    assert.match(await poll.text(), /^BAD_MESSAGE: /)
    const docs = await fetch(`${server.http}/api/docs/r/update`, { method: 'PUT' })
    assert.equal(docs.status, 405)
    assert.equal(docs.headers.get('x-error-code'), 'METHOD_NOT_ALLOWED')
    assert.equal(docs.headers.get('allow'), 'GET, POST')
    assert.equal((await docs.json() as { error: string }).error, 'METHOD_NOT_ALLOWED')
  })
})
