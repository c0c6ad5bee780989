import assert from 'node:assert/strict'
import { describe, it, mock } from 'node:test'
import { atExpiry, hasExpired } from '../../server/session-end.js'

describe('session end', () => {
  it('ends a session at its time, even past the 24.8 days a Node.js timer holds', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 })
    try {
      const day = 86_400_000
      let ended = 0
      atExpiry(Date.now() + 30 * day, () => ended++)
      mock.timers.tick(day)
      assert.equal(ended, 0, 'a delay past 2^31 - 1 ms does not fire at once')
      mock.timers.tick(29 * day - 1)
      assert.equal(ended, 0)
      mock.timers.tick(1)
      assert.equal(ended, 1)
      const cancel = atExpiry(Date.now() + 1000, () => ended++)
      cancel()
      mock.timers.tick(2000)
      assert.equal(ended, 1, 'cancelled')
      atExpiry(Date.now() - 1, () => ended++)
      assert.equal(ended, 2, 'a time already past ends it at once')
    } finally {
      mock.timers.reset()
    }
  })

  it('tells whether access has run out, and refuses a time that is no time', () => {
    assert.equal(hasExpired(undefined), false)
    assert.equal(hasExpired(1000, 999), false)
    assert.equal(hasExpired(1000, 1000), true)
    assert.throws(() => atExpiry(Number.NaN, () => {}), RangeError)
  })
})
