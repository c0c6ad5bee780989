import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startServerProcess } from '../helpers/server-process.js'

const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'main.js')
const run = promisify(execFile)

describe('the server program', () => {
  it('prints every option with --help and exits 0', async () => {
    const { stdout } = await run(process.execPath, [main, '--help'])
    assert.match(stdout, /--max-connection-age-ms/)
    assert.match(stdout, /MAX_CONNECTION_AGE_MS/)
  })

  it('stops at start-up with a message naming the key of a bad value', async () => {
    const failed = await run(process.execPath, [main], { env: { ...process.env, PORT: 'abc' } }).catch((error: { code: number, stderr: string }) => error)
    assert.ok('code' in failed && failed.code === 2, 'exit code 2')
    assert.match((failed as { stderr: string }).stderr, /PORT/)
  })

  it('stops at start-up, naming DATA_DIR, when the database cannot be made there', async () => {
    // A file where a folder should be, and a folder the kernel refuses (a recursive mkdir would spin).
    for (const dataDir of [fileURLToPath(import.meta.url), '/proc/no-such-folder/data']) {
      const failed = await run(process.execPath, [main], { env: { ...process.env, PORT: '0', DATA_DIR: dataDir }, timeout: 20_000 })
        .catch((error: { code: number, stderr: string }) => error)
      assert.ok('code' in failed && failed.code === 2, `exit code 2 for ${dataDir}`)
      assert.match((failed as { stderr: string }).stderr, /configuration error: DATA_DIR \(--data-dir\) .*cannot open/)
    }
  })

  it('logs JSON lines with a severity Cloud Logging understands', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'main-'))
    const server = await startServerProcess({ DATA_DIR: dataDir })
    try {
      const line = server.logs.find((l) => String(l.message).startsWith('listening'))!
      assert.equal(line.severity, 'INFO')
      assert.equal(typeof line.time, 'string')
      assert.equal((await fetch(`${server.http}/healthz`)).status, 200)
    } finally {
      server.child.kill('SIGTERM')
      assert.equal(await server.exited, 0)
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
