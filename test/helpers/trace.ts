import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { findTrace } from '../../bench/trace.js'

/** The automerge-paper editing trace (`../shared/data/`, beside the repository). */
export interface Trace {
  readonly endContent: string
  readonly txns: ReadonlyArray<{ readonly patches: ReadonlyArray<readonly [number, number, string]> }>
}

const besideRepository = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'shared', 'data', 'automerge-paper.json.gz')

/** The trace file the tests read: wherever the bench finds it, else where it should be beside the repository. */
export const traceFile = (): string => findTrace() ?? besideRepository

/** The trace, or null when the file is absent (CI must have it: it throws there instead). */
export const loadTrace = (): Trace | null => {
  const file = traceFile()
  if (!existsSync(file)) {
    if (process.env.CI === 'true') throw new Error(`the editing trace is missing at ${file}`)
    return null
  }
  return JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as Trace
}

/** Every patch in order, flattened. */
export const patchesOf = (trace: Trace): Array<readonly [number, number, string]> => trace.txns.flatMap((t) => t.patches)
