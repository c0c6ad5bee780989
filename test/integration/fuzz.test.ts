import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runScenario } from '../fuzz/scenario.js'
import { MAX_NESTING_DEPTH } from '../../server/nesting.js'
import { MAX_SUBDOCUMENTS } from '../../server/subdocuments.js'

/** The server's resident memory must stay under this while it is fuzzed (it starts near 65 MB). */
const MEMORY_BOUND_MB = 256

describe('fuzzing the wire protocol', () => {
  it('100,000 mutated frames over several sockets and long-poll sends of many frames: the process lives, memory stays bounded, answers stay small, clients converge, a late joiner and a restarted server give what they hold', { timeout: 180_000 }, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 20261128)
    const report = await runScenario({ seed, frames: 100_000, connections: 6, pollSends: 150 })
    const poll = report.poll!
    const summary = `seed ${seed}: ${report.fuzz.sent} frames over ${report.fuzz.sockets} sockets in ${report.fuzz.ms} ms, ` +
      `${poll.sends} long-poll sends of ${poll.frames} frames (statuses ${JSON.stringify(poll.statuses)}, largest answer ${poll.largestAnswer} bytes in ${poll.mostAnswerFrames} frames), ` +
      `closes ${JSON.stringify(report.fuzz.closes)}, late joiner ${report.roundTrips ? 'equals' : 'DIFFERS FROM'} the connected clients, RSS ${report.startRssMb.toFixed(0)} -> peak ${report.peakRssMb.toFixed(0)} MB, ${report.edits} client edits`
    process.stdout.write(`# ${summary}\n`)
    assert.equal(report.fuzz.sent, 100_000)
    assert.ok(report.fuzz.sockets > 6, 'bad frames closed sockets, and new ones took over')
    assert.ok(report.alive, `the server process died (${summary})`)
    assert.ok(report.peakRssMb < MEMORY_BOUND_MB, `peak RSS ${report.peakRssMb.toFixed(0)} MB over ${MEMORY_BOUND_MB} MB (${summary})`)
    assert.ok(report.edits > 0)
    // However many frames a body holds, its answer is at most a step 2, a step 1, awareness and a denial
    // or a request for missing content, each one document or one room's awareness at most.
    assert.ok(poll.mostAnswerFrames <= 5, `a long-poll answer of ${poll.mostAnswerFrames} frames (${summary})`)
    assert.ok(poll.largestAnswer < 1024 * 1024, `a long-poll answer of ${poll.largestAnswer} bytes (${summary})`)
    assert.ok((poll.statuses[200] ?? 0) > 0, `some sends were well-formed enough to be answered (${summary})`)
    assert.ok(Object.keys(poll.statuses).every((status) => ['200', '400', '403', '413', '422', '503'].includes(status)), `unexpected statuses (${summary})`)
    // A late joiner, and after kill -9 and a restart a fresh one, get exactly what the clients hold.
    assert.ok(report.roundTrips, `a late joiner got other content than the connected clients (${summary})`)
    assert.ok(report.reloaded)
    // The corpus holds maps and XML nested past the limit and a flood of subdocuments (issue 24).
    assert.ok(report.maxDepth <= MAX_NESTING_DEPTH, `the document nests ${report.maxDepth} levels`)
    assert.ok(report.subdocuments <= MAX_SUBDOCUMENTS, `the document holds ${report.subdocuments} subdocuments`)
    assert.deepEqual(report.errors.map((line) => line.message), [], `the server logged errors (${summary})`)
  })
})
