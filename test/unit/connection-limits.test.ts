import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { describe, it } from 'node:test'
import { clientAddress, ConnectionCounter } from '../../server/connection-limits.js'

const request = (url: string, headers: Record<string, string> = {}, remoteAddress = '10.0.0.9'): IncomingMessage =>
  ({ url, headers, socket: { remoteAddress } }) as unknown as IncomingMessage

describe('connection limits', () => {
  it('trusts X-Forwarded-For only as far as the configured proxies', () => {
    const req = request('/r', { 'x-forwarded-for': '6.6.6.6, 1.2.3.4, 130.211.0.1' }, '10.0.0.9')
    assert.equal(clientAddress(req, 0), '10.0.0.9')
    assert.equal(clientAddress(req, 1), '130.211.0.1')
    assert.equal(clientAddress(req, 2), '1.2.3.4')
    assert.equal(clientAddress(req, 9), '6.6.6.6')
    assert.equal(clientAddress(request('/r', {}, '10.0.0.9'), 2), '10.0.0.9')
  })

  it('counts connections per instance, address and room, and frees a slot once', () => {
    const counter = new ConnectionCounter({ maxConnections: 4, maxConnectionsPerIp: 2, maxConnectionsPerRoom: 2 })
    const a = counter.take('ip1', 'r1')
    counter.take('ip1', 'r2')
    assert.throws(() => counter.take('ip1', 'r3'), /this address/)
    counter.take('ip2', 'r1')
    assert.throws(() => counter.take('ip3', 'r1'), /room connection limit/)
    counter.take('ip3', 'r3')
    assert.throws(() => counter.take('ip4', 'r4'), /instance connection limit/)
    a.release()
    a.release()
    assert.equal(counter.total, 3)
    counter.take('ip1', 'r1')
    assert.throws(() => new ConnectionCounter({ maxConnections: 0, maxConnectionsPerIp: 1, maxConnectionsPerRoom: 1 }), RangeError)
  })
})
