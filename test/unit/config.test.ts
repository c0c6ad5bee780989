import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError, helpText, KEYS, parseConfig } from '../../server/config.js'

describe('config', () => {
  it('has the documented defaults', () => {
    const config = parseConfig({})
    assert.equal(config.port, 8080)
    assert.equal(config.host, '0.0.0.0')
    assert.ok(config.dataDir.endsWith('/data'))
    assert.equal(config.sqliteSynchronous, 'full')
    assert.equal(config.databaseUrl, null)
    assert.equal(config.redisUrl, null)
    assert.equal(config.maxConnectionAgeMs, null)
    assert.equal(config.maxMessageBytes, 16 * 1024 * 1024)
    assert.equal(config.demo, false)
  })

  it('reads the environment, and flags win over it', () => {
    const config = parseConfig({ PORT: '9000', MAX_CONNECTION_AGE_MS: '3300000' }, ['--port', '9001', '--demo', '--log-level=debug'])
    assert.equal(config.port, 9001)
    assert.equal(config.maxConnectionAgeMs, 3_300_000)
    assert.equal(config.demo, true)
    assert.equal(config.logLevel, 'debug')
    assert.equal(parseConfig({ SQLITE_SYNCHRONOUS: 'NORMAL' }).sqliteSynchronous, 'normal')
    assert.equal(parseConfig({}).pollRequestsPerSecond, 200)
    assert.equal(parseConfig({}, ['--max-poll-requests-per-second', '50']).pollRequestsPerSecond, 50)
  })

  for (const [env, argv, key] of [
    [{ PORT: 'eighty' }, [], 'PORT'],
    [{ PORT: '70000' }, [], 'PORT'],
    [{ MAX_POLL_REQUESTS_PER_SECOND: '0' }, [], 'MAX_POLL_REQUESTS_PER_SECOND'],
    [{ MAX_CONNECTION_AGE_MS: '-5' }, [], 'MAX_CONNECTION_AGE_MS'],
    [{ DATABASE_URL: 'mysql://x' }, [], 'DATABASE_URL'],
    [{ REDIS_URL: 'not a url' }, [], 'REDIS_URL'],
    [{ LOG_LEVEL: 'loud' }, [], 'LOG_LEVEL'],
    [{ DEMO: 'maybe' }, [], 'DEMO'],
    [{ SQLITE_SYNCHRONOUS: 'off' }, [], 'SQLITE_SYNCHRONOUS'],
    [{ AUTH_SECRET: 'short' }, [], 'AUTH_SECRET'],
    [{ METRICS_TOKEN: 'short' }, [], 'METRICS_TOKEN'],
    // Past what a Node.js timer holds (2^31 - 1 ms), a timer fires at once: every socket would close.
    [{ MAX_CONNECTION_AGE_MS: '2000000000' }, [], 'MAX_CONNECTION_AGE_MS'],
    [{ PING_INTERVAL_MS: '2147483648' }, [], 'PING_INTERVAL_MS'],
    [{ ROOM_IDLE_MS: '2147483648' }, [], 'ROOM_IDLE_MS'],
    [{ WEBHOOK_URL: 'http://127.0.0.1:1/hook', WEBHOOK_DEBOUNCE_MS: '2147483648' }, [], 'WEBHOOK_DEBOUNCE_MS'],
    [{}, ['--port'], '--port'],
    [{}, ['--no-such-flag'], '--no-such-flag'],
  ] as const) {
    it(`rejects ${JSON.stringify(env)} ${argv.join(' ')} with an error naming ${key}`, () => {
      assert.throws(() => parseConfig(env, argv), (error: Error) => error instanceof ConfigError && error.message.includes(key))
    })
  }

  it('lists every option in --help', () => {
    const help = helpText()
    for (const key of Object.values(KEYS)) {
      assert.ok(help.includes(key.flag) && help.includes(key.env), `help mentions ${key.env}`)
    }
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
