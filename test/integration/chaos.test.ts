import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatReport, runChaos } from '../../scripts/chaos-run.js'

/**
 * The seeded chaos run of `npm run chaos`, for one minute: three instances on a private Redis and
 * Postgres, socket and long-poll clients hopping between them through the no-affinity proxy, and every
 * kind of fault from the seed's schedule. Nothing any client saw may be lost or doubled anywhere, and
 * everything converges within 5 s of the last fault.
 */
test('a one-minute seeded chaos run loses and duplicates nothing and converges within 5 s of the last fault', async () => {
  const report = await runChaos({ seed: 18, durationMs: 60_000, log: (line) => console.log(line) })
  console.log(formatReport(report).split('\n').map((line) => `# ${line}`).join('\n'))
  assert.ok(report.faults.length >= 10, `faults were injected (${report.faults.length})`)
  assert.ok(report.seen > 100, `clients saw edits echoed (${report.seen})`)
  assert.deepEqual(report.lost, [], 'no edit a client saw is missing anywhere')
  assert.deepEqual(report.duplicated, [], 'no edit is present twice anywhere')
  assert.notEqual(report.convergedMs, null, `everything converged (${report.problems.join('; ')})`)
  assert.ok(report.convergedMs! <= report.convergeGoalMs, `converged within ${report.convergeGoalMs} ms of the last fault (took ${report.convergedMs!.toFixed(0)} ms)`)
  assert.ok(report.ok, report.problems.join('; '))
})
