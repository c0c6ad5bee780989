/**
 * Rooms: many small rooms with two clients each.
 * - join cost: server CPU time per connect + sync (CPU of the server process across all the joins,
 *   divided by the number of clients);
 * - idle memory: RSS growth of the server per connection, 2 s after the last join (garbage of the joins
 *   and a grown young generation included) and again once the server has been idle for `settledMs`,
 *   when V8's memory reducer has run (about 15 s after activity stops); the baseline is taken settled too;
 * - convergence: then one client per room writes, and both clients of every room must hold it.
 */
import * as Y from 'yjs'
import { sleep } from './clock.js'
import { withServer, type Context } from './context.js'
import { split } from './pool.js'
import { dialectOf } from './servers.js'
import { median, type Row } from './stats.js'

const IDLE_SETTLE_MS = 2000

export const rooms = async (ctx: Context): Promise<Row[]> => {
  const size = ctx.sizes.rooms
  const joinCpu = new Map<string, number>()
  const memory = new Map<string, number>()
  const settledMemory = new Map<string, number>()
  const notes: string[] = []
  // Storage off loses everything on a restart: it has its place in fanout only.
  for (const kind of ctx.servers.filter((k) => k !== 'project-memory')) {
    const joins: number[] = []
    const bytes: number[] = []
    const settledBytes: number[] = []
    let failure = ''
    for (let rep = 0; rep < ctx.repeats; rep++) {
      await withServer(kind, {}, size.loadgens, async (server, gens) => {
        const names = Array.from({ length: size.rooms }, (_, i) => `room-${rep}-${i}`)
        const slices = split(names, gens.length)
        await sleep(size.settledMs)
        const rss0 = server.rssBytes()
        const cpu0 = server.cpuMs()
        const opened = await Promise.all(gens.map((gen, i) => gen.open({
          url: server.url,
          dialect: dialectOf(kind),
          rooms: slices[i]!.flatMap((room) => Array(size.clientsPerRoom).fill(room)),
          track: true,
          concurrency: 20,
          timeoutMs: 20_000,
        })))
        const clients = names.length * size.clientsPerRoom
        const cpu1 = server.cpuMs()
        await sleep(IDLE_SETTLE_MS)
        const rss1 = server.rssBytes()
        await sleep(size.settledMs - IDLE_SETTLE_MS)
        const rss2 = server.rssBytes()
        const failed = opened.reduce((sum, r) => sum + r.failed, 0)
        // Convergence: one update per room, from one of its clients, must reach both.
        const expect = new Map<string, Map<number, number>>()
        await Promise.all(gens.map((gen, i) => {
          const updates = new Map<string, Uint8Array[]>()
          for (const room of slices[i]!) {
            const doc = new Y.Doc()
            doc.getText('text').insert(0, `hello ${room}`)
            updates.set(room, [Y.encodeStateAsUpdate(doc)])
            expect.set(room, new Map([[doc.clientID, `hello ${room}`.length]]))
            doc.destroy()
          }
          return gen.send({ updates })
        }))
        const results = await Promise.all(gens.map((gen) => gen.await({ expect, timeoutMs: 20_000 })))
        const complete = results.reduce((sum, r) => sum + r.complete, 0)
        ctx.log(`rooms ${kind} #${rep}: join ${((cpu1 - cpu0) / clients).toFixed(3)} ms CPU, ${((rss1 - rss0) / clients / 1024).toFixed(1)} KB/connection (${((rss2 - rss0) / clients / 1024).toFixed(1)} settled), ${complete}/${clients} converged, ${failed} failed to join`)
        if (failed > 0 || complete !== clients) {
          failure = `${kind}: ${failed} failed to join, ${complete}/${clients} converged`
          return
        }
        joins.push((cpu1 - cpu0) / clients)
        bytes.push((rss1 - rss0) / clients / 1024)
        settledBytes.push((rss2 - rss0) / clients / 1024)
        await Promise.all(gens.map((gen) => gen.close()))
      })
    }
    if (failure !== '') notes.push(failure)
    joinCpu.set(kind, failure === '' ? median(joins) : Number.NaN)
    memory.set(kind, failure === '' ? median(bytes) : Number.NaN)
    settledMemory.set(kind, failure === '' ? median(settledBytes) : Number.NaN)
  }
  const label = `${size.rooms} rooms × ${size.clientsPerRoom}`
  return [
    { scenario: 'rooms', metric: `server CPU per connect + sync, ${label}`, unit: 'ms', values: joinCpu, note: notes.join('; ') },
    { scenario: 'rooms', metric: `RSS per idle connection 2 s after the joins, ${label}`, unit: 'KB', values: memory },
    { scenario: 'rooms', metric: `RSS per idle connection after ${size.settledMs / 1000} s idle, ${label}`, unit: 'KB', values: settledMemory },
  ]
}
