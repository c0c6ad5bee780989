import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { KEYS } from '../../server/config.js'

const run = promisify(execFile)
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const main = join(root, 'dist', 'server', 'main.js')

describe('command line', () => {
  it('--help prints every option with its environment variable, and exits 0', async () => {
    const { stdout } = await run(process.execPath, [main, '--help'])
    assert.match(stdout, /^Usage: yjs-relay/)
    for (const key of Object.values(KEYS)) {
      assert.ok(stdout.includes(key.flag), `--help mentions ${key.flag}`)
      assert.ok(stdout.includes(key.env), `--help mentions ${key.env}`)
    }
  })

  it('the package bin is the built entry, executable, with a node shebang', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }
    assert.equal(pkg.bin['yjs-relay'], 'dist/server/main.js')
    assert.ok((statSync(main).mode & 0o111) !== 0, 'dist/server/main.js is executable')
    assert.match(readFileSync(main, 'utf8'), /^#!\/usr\/bin\/env node\n/)
    // What `npx yjs-relay --help` runs: the file itself, through its shebang.
    const { stdout } = await run(main, ['--help'])
    assert.match(stdout, /--port/)
  })

  it('an unknown option stops with exit code 2 and names it', async () => {
    await assert.rejects(run(process.execPath, [main, '--prot', '1234']), (error: { code: number, stderr: string }) => {
      assert.equal(error.code, 2)
      assert.match(error.stderr, /unknown option "--prot"/)
      return true
    })
  })
})
