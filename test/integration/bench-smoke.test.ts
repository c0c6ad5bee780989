import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TINY } from '../../bench/context.js'
import { runBench } from '../../bench/run.js'
import { table } from '../../bench/stats.js'

test('the benchmark harness drives the project server from a load generator and sees every subscriber converge', async () => {
  const rows = await runBench({ scenarios: ['fanout'], servers: ['project'], repeats: 1, sizes: TINY })
  assert.ok(rows.length >= 4, 'fanout reports latency, burst and throughput rows')
  for (const row of rows) {
    const value = row.values.get('project')
    assert.ok(value !== undefined && Number.isFinite(value), `${row.metric}: no converged figure (${row.note ?? ''})`)
  }
  assert.match(table(rows, ['project']), /\| fanout \| burst of 50 to all 6 \(ms\) \| \d/)
})
