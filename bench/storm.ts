/**
 * Reconnect storm: documents of ~50 KB in many rooms are stored, the server restarts (gracefully, so that
 * every server has stored what it holds), and then every client connects at once. Measured: the time
 * until every client holds its whole document, and how many clients got a first step 2 without the
 * stored content (a server that syncs before it loaded).
 */
import { now } from './clock.js'
import { withServer, type Context } from './context.js'
import { split } from './pool.js'
import { store, typedDoc } from './seed.js'
import { dialectOf } from './servers.js'
import { max, median, type Row } from './stats.js'

export const storm = async (ctx: Context): Promise<Row[]> => {
  const size = ctx.sizes.storm
  const times = new Map<string, number>()
  const empties = new Map<string, number>()
  const notes: string[] = []
  const names = Array.from({ length: size.rooms }, (_, i) => `storm-${i}`)
  const docs = new Map(names.map((room) => [room, typedDoc(size.docBytes, 500, room)]))
  const expect = new Map([...docs].map(([room, doc]) => [room, doc.stateVector]))
  // Storage off loses everything on a restart: it has its place in fanout only.
  for (const kind of ctx.servers.filter((k) => k !== 'project-memory')) {
    const runs: number[] = []
    const incomplete: number[] = []
    const failures: string[] = []
    for (let rep = 0; rep < ctx.repeats; rep++) {
      await withServer(kind, { persist: true }, size.loadgens, async (server, gens) => {
        await store(server, gens[0]!, docs)
        await server.restart()
        const clients = Array.from({ length: size.clients }, (_, i) => names[i % names.length]!)
        const slices = split(clients, gens.length)
        const cpu0 = { server: server.cpuMs(), gens: gens.reduce((sum, gen) => sum + gen.cpuMs(), 0) }
        const start = now()
        const opened = await Promise.all(gens.map((gen, i) => gen.open({
          url: server.url, dialect: dialectOf(kind), rooms: slices[i]!, track: true, concurrency: slices[i]!.length, timeoutMs: 60_000,
        })))
        const results = await Promise.all(gens.map((gen) => gen.await({ expect, timeoutMs: 30_000, firstStep2: true })))
        const complete = results.reduce((sum, r) => sum + r.complete, 0)
        const failed = opened.reduce((sum, r) => sum + r.failed, 0)
        const empty = results.reduce((sum, r) => sum + r.incompleteFirstStep2, 0)
        const all = max(Float64Array.from(results.flatMap((r) => [...r.completeAt]))) - start
        // CPU used meanwhile: with two cores, what the clients cost is the floor under every server.
        const cpu = { server: server.cpuMs() - cpu0.server, gens: gens.reduce((sum, gen) => sum + gen.cpuMs(), 0) - cpu0.gens }
        ctx.log(`storm ${kind} #${rep}: ${complete}/${size.clients} hold the document after ${all.toFixed(0)} ms; ${empty} first step 2s lacked it; ${failed} failed to connect; ` +
          `CPU meanwhile: server ${cpu.server} ms, load generators ${cpu.gens} ms`)
        if (complete !== size.clients) failures.push(`${complete}/${size.clients}`)
        else runs.push(all)
        incomplete.push(empty)
        await Promise.all(gens.map((gen) => gen.close()))
      })
    }
    // The median of the repeats that converged; the others are named in the note.
    if (failures.length > 0) notes.push(`${kind}: ${failures.length}/${ctx.repeats} repeats did not converge (${failures.join(', ')} clients held the document)`)
    times.set(kind, runs.length > 0 ? median(runs) : Number.NaN)
    empties.set(kind, median(incomplete))
  }
  const label = `${size.clients} clients, ${size.rooms} rooms of ${Math.round(size.docBytes / 1000)} KB`
  return [
    { scenario: 'storm', metric: `all hold the document after a restart, ${label}`, unit: 'ms', values: times, note: notes.join('; ') },
    { scenario: 'storm', metric: 'clients whose first step 2 lacked the stored document', unit: 'clients', values: empties },
  ]
}
