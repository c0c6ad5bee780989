import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, parseConfig } from '../../server/config.js'

describe('webhook settings', () => {
  it('are off by default', () => {
    const config = parseConfig({})
    assert.equal(config.webhookUrl, null)
    assert.deepEqual(config.webhookTextFields, [])
    assert.equal(config.webhookDebounceMs, 2000)
  })

  it('read the URL, secret, text fields and debounce from env and flags', () => {
    const config = parseConfig(
      { WEBHOOK_URL: 'https://example.test/hook', WEBHOOK_SECRET: 's', WEBHOOK_TEXT_FIELDS: ' text, title ,,' },
      ['--webhook-debounce-ms', '500'],
    )
    assert.equal(config.webhookUrl, 'https://example.test/hook')
    assert.equal(config.webhookSecret, 's')
    assert.deepEqual(config.webhookTextFields, ['text', 'title'])
    assert.equal(config.webhookDebounceMs, 500)
  })

  it('refuse a URL that is not http(s), and a secret without a URL, naming the key', () => {
    assert.throws(() => parseConfig({ WEBHOOK_URL: 'ftp://example.test/' }), (error: Error) => error instanceof ConfigError && /WEBHOOK_URL/.test(error.message))
    assert.throws(() => parseConfig({ WEBHOOK_SECRET: 'secret' }), (error: Error) => error instanceof ConfigError && /WEBHOOK_SECRET/.test(error.message))
    assert.throws(() => parseConfig({ WEBHOOK_DEBOUNCE_MS: 'soon' }), (error: Error) => error instanceof ConfigError && /WEBHOOK_DEBOUNCE_MS/.test(error.message))
  })
})
