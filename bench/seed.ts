/** Documents to store before a scenario, as Yjs updates, and a way to store them in a server. */
import * as Y from 'yjs'
import type { LoadGenerator } from './pool.js'
import { dialectOf, type ServerProcess } from './servers.js'

export interface SeedDoc {
  readonly updates: Uint8Array[]
  readonly stateVector: Map<number, number>
  readonly text: string
}

/** A text of about `bytes` characters typed in chunks of `chunk`, one update per chunk. */
export const typedDoc = (bytes: number, chunk: number, salt: string): SeedDoc => {
  const doc = new Y.Doc()
  const text = doc.getText('text')
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => updates.push(update))
  const line = `${salt} lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. `
  let i = 0
  while (text.length < bytes) {
    const piece = line.repeat(Math.ceil(chunk / line.length)).slice(0, chunk)
    // Insert in the middle now and then, so the document is not one long run.
    text.insert(i % 7 === 3 ? Math.floor(text.length / 2) : text.length, piece)
    i++
  }
  const seed = { updates, stateVector: Y.decodeStateVector(Y.encodeStateVector(doc)), text: text.toString() }
  doc.destroy()
  return seed
}

/**
 * Stores `docs` in `server` through one client per room, then checks with a fresh client per room that
 * the server holds each document whole. Throws if it does not.
 */
export const store = async (server: ServerProcess, gen: LoadGenerator, docs: ReadonlyMap<string, SeedDoc>): Promise<void> => {
  const dialect = dialectOf(server.kind)
  const rooms = [...docs.keys()]
  await gen.open({ url: server.url, dialect, rooms, track: false, concurrency: 50, timeoutMs: 20_000, writers: true })
  await gen.send({ updates: new Map([...docs].map(([room, doc]) => [room, doc.updates])) })
  await gen.open({ url: server.url, dialect, rooms, track: true, concurrency: 50, timeoutMs: 20_000 })
  const expect = new Map([...docs].map(([room, doc]) => [room, doc.stateVector]))
  const result = await gen.await({ expect, timeoutMs: 60_000 })
  await gen.close()
  if (result.complete !== result.clients) throw new Error(`${server.kind}: only ${result.complete}/${result.clients} rooms hold their seeded document`)
}
