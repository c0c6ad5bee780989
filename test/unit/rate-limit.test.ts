import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AddressRateLimit, TokenBucket } from '../../server/rate-limit.js'

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
