/**
 * Big document: the automerge-paper trace (260k edits, 105k characters) stored as one update per
 * 1,000 edits.
 * - warm join: with the room loaded, fresh clients join one after another; server CPU per join;
 * - cold join: after a restart, one client joins; the time until it holds the whole document, and
 *   whether its first step 2 already did.
 */
import { createHash } from 'node:crypto'
import { now } from './clock.js'
import { withServer, type Context } from './context.js'
import { store } from './seed.js'
import { dialectOf } from './servers.js'
import { max, median, type Row } from './stats.js'
import { replayTrace } from './trace.js'

export const bigdoc = async (ctx: Context): Promise<Row[]> => {
  const size = ctx.sizes.bigdoc
  const seed = replayTrace(size.editsPerUpdate, size.maxEdits)
  const sha1 = createHash('sha1').update(seed.text).digest('hex')
  const room = 'paper'
  const expect = new Map([[room, seed.stateVector]])
  const warm = new Map<string, number>()
  const cold = new Map<string, number>()
  const firstIncomplete = new Map<string, number>()
  const notes: string[] = []
  // Storage off loses everything on a restart: it has its place in fanout only.
  for (const kind of ctx.servers.filter((k) => k !== 'project-memory')) {
    await withServer(kind, { persist: true }, 2, async (server, [holder, gen]) => {
      const dialect = dialectOf(kind)
      let failure = ''
      await store(server, gen!, new Map([[room, seed]]))
      // One client holds the room loaded while the others come and go.
      await holder!.open({ url: server.url, dialect, rooms: [room], track: false, concurrency: 1, timeoutMs: 30_000 })
      const perJoin: number[] = []
      for (let rep = 0; rep < ctx.repeats; rep++) {
        const cpu0 = server.cpuMs()
        for (let j = 0; j < size.joins; j++) {
          await gen!.open({ url: server.url, dialect, rooms: [room], track: true, concurrency: 1, timeoutMs: 30_000 })
          const result = await gen!.await({ expect, timeoutMs: 30_000 })
          await gen!.close()
          if (result.complete !== 1) failure = `${kind}: a warm join did not get the whole document`
        }
        perJoin.push((server.cpuMs() - cpu0) / size.joins)
        ctx.log(`bigdoc ${kind} #${rep}: warm join ${perJoin.at(-1)!.toFixed(2)} ms CPU`)
      }
      await holder!.close()
      const colds: number[] = []
      const incomplete: number[] = []
      for (let rep = 0; rep < ctx.repeats; rep++) {
        await server.restart()
        const start = now()
        await gen!.open({ url: server.url, dialect, rooms: [room], track: true, concurrency: 1, timeoutMs: 60_000 })
        const result = await gen!.await({ expect, timeoutMs: 60_000, firstStep2: true, textChecks: 1 })
        await gen!.close()
        const text = result.texts[0]
        if (result.complete !== 1 || text === undefined || text.sha1 !== sha1) failure = `${kind}: the cold join did not get the whole document`
        colds.push(max(result.completeAt) - start)
        incomplete.push(result.incompleteFirstStep2)
        ctx.log(`bigdoc ${kind} #${rep}: cold join ${colds.at(-1)!.toFixed(0)} ms, first step 2 ${result.incompleteFirstStep2 === 0 ? 'complete' : 'INCOMPLETE'}`)
      }
      if (failure !== '') notes.push(failure)
      warm.set(kind, failure === '' ? median(perJoin) : Number.NaN)
      cold.set(kind, failure === '' ? median(colds) : Number.NaN)
      firstIncomplete.set(kind, incomplete.reduce((a, b) => a + b, 0))
    })
  }
  const label = `${seed.text.length} chars, ${seed.updates.length} stored updates`
  return [
    { scenario: 'bigdoc', metric: `server CPU per fresh client on the loaded room, ${label}`, unit: 'ms', values: warm, note: notes.join('; ') },
    { scenario: 'bigdoc', metric: 'cold join after a restart: whole document', unit: 'ms', values: cold },
    { scenario: 'bigdoc', metric: 'cold joins whose first step 2 lacked the document', unit: 'joins', values: firstIncomplete },
  ]
}
