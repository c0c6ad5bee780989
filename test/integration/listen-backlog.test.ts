import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { LISTEN_BACKLOG } from '../../server/sync-server.js'
import { startServer } from '../helpers/server.js'

test('listen() queues a reconnect storm: the listening socket\'s backlog is LISTEN_BACKLOG (capped by the kernel), not Node\'s 511', async () => {
  const server = await startServer()
  try {
    // For a listening socket, `ss` shows the backlog in the Send-Q column.
    const line = execFileSync('ss', ['-ltnH', `sport = :${server.port}`], { encoding: 'utf8' }).trim()
    const backlog = Number(line.split(/\s+/)[2])
    const cap = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'))
    assert.equal(backlog, Math.min(LISTEN_BACKLOG, cap), `ss says: ${line}`)
    assert.ok(backlog > 511, `the kernel caps the backlog at ${cap}`)
  } finally {
    await server.close()
  }
})
