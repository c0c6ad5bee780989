/** The automerge-paper editing trace (see shared/data/README.md), replayed into Yjs updates. */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'
import type { SeedDoc } from './seed.js'

export interface Trace {
  readonly endContent: string
  readonly txns: ReadonlyArray<{ readonly patches: ReadonlyArray<readonly [number, number, string]> }>
}

const CANDIDATES = [
  process.env.TRACE_FILE,
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'data', 'automerge-paper.json.gz'),
  '/work/shared/data/automerge-paper.json.gz',
]

/** Where the trace is: TRACE_FILE, `../shared/data/` beside the repository, or the workspace's copy; null if nowhere. */
export const findTrace = (): string | null => CANDIDATES.find((path) => path !== undefined && existsSync(path)) ?? null

export const tracePath = (): string => {
  const found = findTrace()
  if (found === null) throw new Error('automerge-paper.json.gz not found: set TRACE_FILE to its path')
  return found
}

/** Reads and parses the (gzipped JSON) trace file. */
export const readTrace = (file: string = tracePath()): Trace => JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as Trace

/**
 * Replays the trace into a Y.Text, `editsPerUpdate` edits per transaction (one stored update each), up to
 * `maxEdits` edits. The text is checked against the trace's end content when replayed whole.
 */
export const replayTrace = (editsPerUpdate: number, maxEdits = Number.POSITIVE_INFINITY): SeedDoc => {
  const trace = readTrace()
  const patches = trace.txns.flatMap((txn) => txn.patches)
  const total = Math.min(patches.length, maxEdits)
  const doc = new Y.Doc()
  const text = doc.getText('text')
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => updates.push(update))
  for (let i = 0; i < total; i += editsPerUpdate) {
    doc.transact(() => {
      for (const [pos, del, ins] of patches.slice(i, Math.min(total, i + editsPerUpdate))) {
        if (del > 0) text.delete(pos, del)
        if (ins !== '') text.insert(pos, ins)
      }
    })
  }
  const result = text.toString()
  if (total === patches.length && result !== trace.endContent) throw new Error('trace replay does not give the end content')
  const seed = { updates, stateVector: Y.decodeStateVector(Y.encodeStateVector(doc)), text: result }
  doc.destroy()
  return seed
}
