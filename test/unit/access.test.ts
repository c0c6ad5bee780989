import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkOrigin, normalizeOrigin, validateRoomName } from '../../server/access.js'
import { SyncError } from '../../server/errors.js'

describe('access checks', () => {
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
})
