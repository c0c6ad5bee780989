import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { describe, it } from 'node:test'
import { SignJWT } from 'jose'
import { checkOrigin, clientAddress, ConnectionCounter, normalizeOrigin, validateRoomName } from '../../server/admission.js'
import { createTokenAuthorize, grantsRoom, parseDuration, signToken, tokenOf } from '../../server/auth.js'
import { ConfigError, KEYS, parseConfig } from '../../server/config.js'
import { SyncError } from '../../server/errors.js'
import { AddressRateLimit, TokenBucket } from '../../server/rate-limit.js'

const SECRET = 'unit-test-secret-0123456789'

const request = (url: string, headers: Record<string, string> = {}, remoteAddress = '10.0.0.9'): IncomingMessage =>
  ({ url, headers, socket: { remoteAddress } }) as unknown as IncomingMessage

const refusedWith = async (promise: Promise<unknown> | unknown, code: string): Promise<void> => {
  await assert.rejects(Promise.resolve(promise), (error: unknown) => error instanceof SyncError && error.code === code)
}

describe('tokens', () => {
  const authorize = createTokenAuthorize({ secret: SECRET })

  it('are read from Authorization: Bearer first, then from ?token=', () => {
    assert.equal(tokenOf(request('/room?token=abc')), 'abc')
    assert.equal(tokenOf(request('/room?x=1&token=a%2Bb')), 'a+b')
    assert.equal(tokenOf(request('/room?token=q', { authorization: 'Bearer h.e.d' })), 'h.e.d')
    assert.equal(tokenOf(request('/room', { authorization: 'Basic abc' })), null)
    assert.equal(tokenOf(request('/room?token=')), null)
    assert.equal(tokenOf(request('/room')), null)
  })

  it('grant an exact room or a * prefix', () => {
    assert.ok(grantsRoom('notes', 'notes'))
    assert.ok(!grantsRoom('notes', 'notes2'))
    assert.ok(grantsRoom('team-a/*', 'team-a/doc'))
    assert.ok(!grantsRoom('team-a/*', 'team-b/doc'))
    assert.ok(grantsRoom('*', 'anything'))
  })

  it('grant the mode they name, for the room they name', async () => {
    const write = await signToken({ secret: SECRET, room: 'notes', mode: 'write', ttlSeconds: 60 })
    const read = await signToken({ secret: SECRET, room: 'team/*', mode: 'read', ttlSeconds: 60 })
    assert.deepEqual(await authorize(request(`/notes?token=${write}`), 'notes'), { mode: 'write' })
    assert.deepEqual(await authorize(request('/team/x', { authorization: `Bearer ${read}` }), 'team/x'), { mode: 'read' })
  })

  it('are refused when missing, expired, forged, without exp or mode, or for another room', async () => {
    const now = Math.floor(Date.now() / 1000)
    const expired = await signToken({ secret: SECRET, room: 'notes', mode: 'write', ttlSeconds: 60, now: now - 3600 })
    const forged = await signToken({ secret: 'another-secret-0123456789', room: 'notes', mode: 'write', ttlSeconds: 60 })
    const key = new TextEncoder().encode(SECRET)
    const noExp = await new SignJWT({ room: 'notes', mode: 'write' }).setProtectedHeader({ alg: 'HS256' }).sign(key)
    const noMode = await new SignJWT({ room: 'notes' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key)
    const other = await signToken({ secret: SECRET, room: 'other', mode: 'write', ttlSeconds: 60 })
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"room":"notes","mode":"write","exp":${now + 60}}`).toString('base64url')}.`
    await refusedWith(authorize(request('/notes'), 'notes'), 'UNAUTHENTICATED')
    await refusedWith(authorize(request(`/notes?token=${expired}`), 'notes'), 'UNAUTHENTICATED')
    await refusedWith(authorize(request(`/notes?token=${forged}`), 'notes'), 'UNAUTHENTICATED')
    await refusedWith(authorize(request(`/notes?token=${noExp}`), 'notes'), 'UNAUTHENTICATED')
    await refusedWith(authorize(request(`/notes?token=${noMode}`), 'notes'), 'UNAUTHENTICATED')
    await refusedWith(authorize(request(`/notes?token=${unsigned}`), 'notes'), 'UNAUTHENTICATED')
    await refusedWith(authorize(request('/notes?token=garbage'), 'notes'), 'UNAUTHENTICATED')
    await refusedWith(authorize(request(`/notes?token=${other}`), 'notes'), 'FORBIDDEN')
  })

  it('refuse a short secret and bad requests with RangeError', async () => {
    assert.throws(() => createTokenAuthorize({ secret: 'short' }), RangeError)
    await assert.rejects(signToken({ secret: SECRET, room: 'r', mode: 'admin' as never, ttlSeconds: 60 }), RangeError)
    await assert.rejects(signToken({ secret: SECRET, room: '', mode: 'read', ttlSeconds: 60 }), RangeError)
  })

  it('take durations in seconds, minutes, hours and days', () => {
    assert.equal(parseDuration('90'), 90)
    assert.equal(parseDuration('30m'), 1800)
    assert.equal(parseDuration('1h'), 3600)
    assert.equal(parseDuration('7d'), 604800)
    assert.throws(() => parseDuration('1y'), RangeError)
    assert.throws(() => parseDuration('0s'), RangeError)
  })
})

describe('admission', () => {
  it('accepts room names as browsers send them, percent-encoded', () => {
    for (const name of ['notes', 'team-a/doc.1', 'h%C3%A9llo%20world', "a~b!$&'()*+,;=:@c", 'x'.repeat(256)]) validateRoomName(name)
  })

  it('refuses empty, too long, and non-path room names with BAD_ROOM', () => {
    for (const name of ['', 'x'.repeat(257), 'a b', 'a|b', 'a%zz', 'a%2', 'tab\there', 'new\nline', 'a"b', 'a<b>', 'é']) {
      assert.throws(() => validateRoomName(name), (error: unknown) => error instanceof SyncError && error.code === 'BAD_ROOM', name)
    }
    assert.throws(() => validateRoomName('abcd', 3), SyncError)
  })

  it('lets through allowed origins, requests without Origin, and everything when unconfigured', () => {
    const allowed = new Set([normalizeOrigin('https://App.example.com:443/')])
    checkOrigin('https://app.example.com', allowed)
    checkOrigin(undefined, allowed)
    checkOrigin('https://evil.example', null)
    for (const origin of ['https://evil.example', 'http://app.example.com', 'https://app.example.com:8443', 'null', 'garbage']) {
      assert.throws(() => checkOrigin(origin, allowed), (error: unknown) => error instanceof SyncError && error.code === 'BAD_ORIGIN', origin)
    }
  })

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
    const a = counter.admit('ip1', 'r1')
    counter.admit('ip1', 'r2')
    assert.throws(() => counter.admit('ip1', 'r3'), /this address/)
    counter.admit('ip2', 'r1')
    assert.throws(() => counter.admit('ip3', 'r1'), /room connection limit/)
    counter.admit('ip3', 'r3')
    assert.throws(() => counter.admit('ip4', 'r4'), /instance connection limit/)
    a.release()
    a.release()
    assert.equal(counter.total, 3)
    counter.admit('ip1', 'r1')
    assert.throws(() => new ConnectionCounter({ maxConnections: 0, maxConnectionsPerIp: 1, maxConnectionsPerRoom: 1 }), RangeError)
  })
})

describe('token bucket', () => {
  it('allows the burst at once, then the rate', () => {
    let now = 0
    const bucket = new TokenBucket(10, 5, () => now)
    for (let i = 0; i < 5; i++) assert.ok(bucket.take())
    assert.ok(!bucket.take())
    now += 100
    assert.ok(bucket.take())
    assert.ok(!bucket.take())
    now += 10_000
    for (let i = 0; i < 5; i++) assert.ok(bucket.take())
    assert.ok(!bucket.take())
  })
})

describe('per-address rate limit', () => {
  it('keeps one bucket per address, and forgets a bucket once it would be full again', () => {
    let now = 0
    const limit = new AddressRateLimit(10, 5, () => now)
    for (let i = 0; i < 5; i++) assert.ok(limit.take('a'))
    assert.ok(!limit.take('a'), 'a spent its burst')
    assert.ok(limit.take('b'), 'b has its own bucket')
    assert.equal(limit.size, 2)
    now += 300
    assert.ok(limit.take('b'))
    assert.equal(limit.size, 2, 'a is not full yet: kept')
    now += 200
    assert.ok(limit.take('c'))
    assert.equal(limit.size, 2, 'a, unused for the time a bucket takes to refill, is forgotten; b and c stay')
    for (let i = 0; i < 5; i++) assert.ok(limit.take('a'), 'a starts again with a full bucket')
    assert.throws(() => new AddressRateLimit(0, 5), RangeError)
  })
})

describe('security config', () => {
  it('has documented defaults', () => {
    const config = parseConfig({})
    assert.equal(config.allowedOrigins, null)
    assert.equal(config.trustProxy, 0)
    assert.ok(config.maxConnectionsPerIp >= 500)
    assert.equal(config.messagesPerSecond, Number(KEYS.messagesPerSecond.fallback))
    assert.equal(config.maxRoomNameLength, 256)
  })

  it('parses origins and proxies, and names the key of a bad value', () => {
    const config = parseConfig({ ALLOWED_ORIGINS: 'https://a.example, http://localhost:5173', TRUST_PROXY: 'true' })
    assert.deepEqual(config.allowedOrigins, ['https://a.example', 'http://localhost:5173'])
    assert.equal(config.trustProxy, 1)
    assert.equal(parseConfig({ TRUST_PROXY: '2' }).trustProxy, 2)
    assert.throws(() => parseConfig({ ALLOWED_ORIGINS: 'not an origin' }), (e: unknown) => e instanceof ConfigError && /ALLOWED_ORIGINS/.test(e.message))
    assert.throws(() => parseConfig({ MAX_MESSAGES_PER_SECOND: '0' }), /MAX_MESSAGES_PER_SECOND/)
    assert.throws(() => parseConfig({ TRUST_PROXY: 'maybe' }), /TRUST_PROXY/)
  })
})
