/**
 * Issue 24, finding 4, over long-polling with a read token: held polls whose snapshots carry huge delete
 * sets. What a held poll keeps is bounded, and the work each change to the room costs does not grow with
 * the held polls' snapshots.
 */
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { after, before, describe, it } from 'node:test'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { encodePollRequest } from '../../server/transport/long-poll-wire.js'
import { MiB } from '../helpers/memory.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heapAfterGc = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
}

const FAR = 2 ** 29
const RUNS = 300_000

/**
 * A snapshot that claims every clock of the room's clients up to 2^30 and a delete set covering all they
 * have, plus RUNS single deletions after it (about 1.5 MB): a poll that is never answered, whose delete
 * set the server would sort at every change.
 */
const hostileSnapshot = (clients: readonly number[]): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, clients.length)
  for (const [index, client] of clients.entries()) {
    encoding.writeVarUint(encoder, client)
    const runs = index === 0 ? RUNS : 0
    encoding.writeVarUint(encoder, runs + 1)
    encoding.writeVarUint(encoder, 0)
    encoding.writeVarUint(encoder, FAR)
    for (let i = 0; i < runs; i++) {
      encoding.writeVarUint(encoder, FAR + 2 + 2 * i)
      encoding.writeVarUint(encoder, 1)
    }
  }
  encoding.writeVarUint(encoder, clients.length)
  for (const client of clients) {
    encoding.writeVarUint(encoder, client)
    encoding.writeVarUint(encoder, 2 * FAR - 1)
  }
  return encoding.toUint8Array(encoder)
}

describe('held polls with huge delete sets (issue 24, finding 4)', () => {
  let server: TestServer
  before(async () => { server = await startServer({ pollHoldMs: 60_000, authorize: () => ({ mode: 'read' }) }) })
  after(() => server.close())

  it('keeps little of a held poll\'s snapshot, and a change costs the same however big the held snapshots are', async () => {
    await server.server.transact('held', (doc) => doc.getText('text').insert(0, 'hello'))
    const handle = await server.server.openRoom('held')
    const aborts: AbortController[] = []
    try {
      const clients = [...Y.decodeStateVector(Y.encodeStateVector(handle.doc)).keys()]
      const body = encodePollRequest(hostileSnapshot(clients), new Map())
      assert.ok(body.length > 1.2 * MiB && body.length < 2 * MiB, `a poll of ${body.length} bytes`)
      const base = heapAfterGc()
      const polls = Array.from({ length: 6 }, () => {
        const abort = new AbortController()
        aborts.push(abort)
        return fetch(`${server.http}/poll/held?op=poll`, { method: 'POST', body, signal: abort.signal }).catch(() => null)
      })
      await waitFor(() => server.server.heldPolls === 6, { message: 'six held polls', timeoutMs: 20_000 })
      const kept = heapAfterGc() - base
      assert.ok(kept < 24 * MiB, `six held polls keep ${(kept / MiB).toFixed(1)} MiB`)
      // Twenty edits, each stored, applied and checked against every held poll.
      const started = performance.now()
      for (let i = 0; i < 20; i++) await handle.transact((doc) => doc.getText('text').insert(0, 'x'))
      await new Promise((resolve) => setImmediate(resolve))
      const took = performance.now() - started
      assert.ok(took < 2000, `twenty edits took ${took.toFixed(0)} ms with the polls held`)
      assert.equal(server.server.heldPolls, 6, 'the polls claim to have everything: still held')
      for (const abort of aborts) abort.abort()
      await Promise.all(polls)
    } finally {
      for (const abort of aborts) abort.abort()
      handle.release()
    }
  })
})
