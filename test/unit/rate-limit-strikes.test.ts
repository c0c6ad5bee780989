import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FINAL_STRIKE, FIRST_PAUSE_MS, RateLimitStrikes, STRIKE_WINDOW_MS } from '../../server/rate-limit-strikes.js'

describe('RateLimitStrikes', () => {
  it('answers the first breaches as transient with a doubling pause, and the FINAL_STRIKE-th as final', () => {
    let now = 0
    const strikes = new RateLimitStrikes(() => now)
    assert.equal(strikes.pause('a'), 0)
    const answers: string[] = []
    const pauses: number[] = []
    for (let i = 0; i < FINAL_STRIKE; i++) {
      answers.push(strikes.strike('a'))
      pauses.push(strikes.pause('a'))
      now += strikes.pause('a')
    }
    assert.deepEqual(answers, [...Array(FINAL_STRIKE - 1).fill('transient'), 'final'])
    assert.deepEqual(pauses.slice(0, 3), [FIRST_PAUSE_MS, 2 * FIRST_PAUSE_MS, 4 * FIRST_PAUSE_MS])
    assert.equal(strikes.pause('b'), 0, 'another address is not paused')
  })

  it('forgets an address that has not breached for the window', () => {
    let now = 0
    const strikes = new RateLimitStrikes(() => now)
    for (let i = 0; i < FINAL_STRIKE - 1; i++) strikes.strike('a')
    now += STRIKE_WINDOW_MS
    assert.equal(strikes.strike('a'), 'transient')
    now += STRIKE_WINDOW_MS
    strikes.strike('b')
    assert.equal(strikes.size, 1, 'a was swept')
  })
})
