import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { ConfigError, KEYS, parseConfig } from '../../server/config.js'
import { messageBurst, MIN_MESSAGE_BURST, NUMBER_OPTIONS, numberOption, type NumberOptionName } from '../../server/options.js'
import { createSyncServer } from '../../server/sync-server.js'

/** The numeric options that are also settings of the command line, by name. */
const shared = Object.keys(NUMBER_OPTIONS).filter((name) => name in KEYS) as Array<NumberOptionName & keyof typeof KEYS>

describe('options', () => {
  it('take every default from one table, for the server and the command line alike', () => {
    assert.ok(shared.length >= 15, `${shared.length} shared settings`)
    for (const name of shared) {
      const fallback = NUMBER_OPTIONS[name].default
      assert.equal(KEYS[name].fallback, fallback === null ? null : String(fallback), name)
      if (fallback !== null) assert.equal(numberOption(name, undefined), fallback, name)
    }
    const config = parseConfig({})
    for (const name of shared) assert.equal(config[name], NUMBER_OPTIONS[name].default, name)
  })

  it('accept the same range on both paths, and name the option or the key of a value outside it', () => {
    for (const name of shared) {
      const { min, max } = NUMBER_OPTIONS[name]
      const env = KEYS[name].env
      for (const value of [min, max]) {
        assert.equal(numberOption(name, value), value, `${name} ${value}`)
        assert.equal(parseConfig({ [env]: String(value) })[name], value, `${env} ${value}`)
      }
      for (const value of [min - 1, max + 1]) {
        if (value < 0 || !Number.isSafeInteger(value)) continue
        assert.throws(() => numberOption(name, value), (e: unknown) => e instanceof RangeError && e.message.startsWith(`${name} `), `${name} ${value}`)
        assert.throws(() => parseConfig({ [env]: String(value) }), (e: unknown) => e instanceof ConfigError && e.message.startsWith(env), `${env} ${value}`)
      }
    }
  })

  it('refuse a fraction or a value of the wrong type with the error ws would throw', () => {
    assert.throws(() => createSyncServer({ maxConnections: 1.5 }), (e: unknown) => e instanceof RangeError && /maxConnections/.test(e.message))
    assert.throws(() => createSyncServer({ pingIntervalMs: '100' as unknown as number }), (e: unknown) => e instanceof TypeError && /pingIntervalMs/.test(e.message))
    assert.throws(() => createSyncServer({ shutdownSpreadMs: 120_000 }), (e: unknown) => e instanceof RangeError && /shutdownSpreadMs/.test(e.message))
    assert.throws(() => createSyncServer({ webhook: { url: 'http://127.0.0.1:9/', debounceMs: -1 } }), /webhook\.debounceMs/)
    assert.throws(() => createSyncServer({ prefix: 'sync/' }), TypeError)
    assert.throws(() => createSyncServer({ pollPrefix: '/' }), TypeError)
  })

  it('give a socket a burst as large as its rate unless told otherwise, from the command line too', () => {
    assert.equal(messageBurst({}), MIN_MESSAGE_BURST)
    assert.equal(messageBurst({ messagesPerSecond: 1000 }), 1000)
    assert.equal(messageBurst({ messagesPerSecond: 1000, messageBurst: 50 }), 50)
    // The command line gave 300 whatever the rate, below the rate itself.
    assert.equal(messageBurst(parseConfig({ MAX_MESSAGES_PER_SECOND: '1000' })), 1000)
    assert.equal(messageBurst(parseConfig({ MAX_MESSAGES_PER_SECOND: '1000', MESSAGE_BURST: '40' })), 40)
  })

  it('are documented in README with the defaults of the table', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
    for (const name of shared) {
      const { env, fallback } = KEYS[name]
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${env}\` |`))
      assert.ok(row !== undefined, `README has a row for ${env}`)
      const cell = row.split('|')[3]!.trim()
      if (fallback === null) assert.doesNotMatch(cell, /^\d/, `${env}: ${cell}`)
      else assert.equal(cell, fallback, env)
    }
  })
})
