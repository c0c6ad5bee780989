import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { describe, it } from 'node:test'
import { SignJWT } from 'jose'
import { SyncError } from '../../server/errors.js'
import { createTokenAuthorize, grantsRoom, parseDuration, signToken, tokenOf } from '../../server/tokens.js'

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
    const granted = await authorize(request(`/notes?token=${write}`), 'notes')
    assert.equal(granted.mode, 'write')
    assert.equal((await authorize(request('/team/x', { authorization: `Bearer ${read}` }), 'team/x')).mode, 'read')
    // The session ends at exp plus the clock tolerance (5 s by default), when jwtVerify stops accepting it.
    const exp = JSON.parse(Buffer.from(write.split('.')[1]!, 'base64url').toString()).exp as number
    assert.equal(granted.expiresAt, (exp + 5) * 1000)
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
