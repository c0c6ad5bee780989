import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TINY } from '../../bench/context.js'
import { runBench } from '../../bench/run.js'

test('the cluster benchmark drives three instances of the project and of Hocuspocus + Redis and counts what is lost', async () => {
  const rows = await runBench({ scenarios: ['cluster'], servers: ['project', 'hocuspocus'], repeats: 1, sizes: TINY })
  const metric = (name: string) => {
    const row = rows.find((r) => r.metric === name)
    assert.ok(row !== undefined, `a row "${name}" (rows: ${rows.map((r) => r.metric).join('; ')})`)
    return row
  }
  for (const topology of ['1 room × 12', '3 rooms × 4']) {
    for (const kind of ['project', 'hocuspocus']) {
      const p99 = metric(`${topology}: p99 at 100/s`).values.get(kind)
      assert.ok(p99 !== undefined && Number.isFinite(p99), `${kind} ${topology}: a p99 (${metric(`${topology}: p99 at 100/s`).note ?? ''})`)
      assert.ok(Number.isFinite(metric(`${topology}: burst of 50, until all hold it`).values.get(kind)), `${kind} ${topology}: a burst time`)
    }
    assert.equal(metric(`${topology}: deliveries lost, all steps`).values.get('project'), 0, 'the project loses nothing')
    assert.equal(metric(`${topology}: deliveries duplicated at probes, all steps`).values.get('project'), 0, 'the project duplicates nothing')
  }
})
