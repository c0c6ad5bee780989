import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

interface AuditResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const audit = (): Promise<AuditResult> => new Promise((resolve) => {
  execFile('npm', ['audit', '--omit=dev', '--json'], { cwd: root, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
    resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr })
  })
})

describe('dependencies', () => {
  it('npm audit --omit=dev reports no high or critical vulnerability', { timeout: 120_000 }, async (t) => {
    const result = await audit()
    let report: { metadata?: { vulnerabilities?: Record<string, number> }, message?: string, error?: { summary?: string } }
    try {
      report = JSON.parse(result.stdout)
    } catch {
      report = {}
    }
    const counts = report.metadata?.vulnerabilities
    if (counts === undefined) {
      const why = report.message ?? (report.error?.summary || result.stderr.trim().split('\n')[0]) ?? 'no report'
      // A registry that refuses the advisory endpoint (this network's proxy allows only GET/HEAD) is not a
      // service CI could start: skip loudly. Any other missing report fails on CI.
      const refused = /\b405\b|Method Not Allowed/.test(why)
      if (process.env.CI === 'true' && !refused) assert.fail(`npm audit gave no report: ${why}`)
      process.stderr.write(`\n!!! SKIPPED: npm audit could not reach the registry's advisory endpoint (${why})\n`)
      t.skip(`SKIPPED LOUDLY: npm audit could not reach the registry's advisory endpoint (${why})`)
      return
    }
    const serious = (counts.high ?? 0) + (counts.critical ?? 0)
    assert.equal(serious, 0, `npm audit --omit=dev: ${JSON.stringify(counts)}; run \`npm audit --omit=dev\` for details`)
  })
})
