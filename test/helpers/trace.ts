import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'

/** The automerge-paper editing trace (`../shared/data/`, beside the repository). */
export interface Trace {
  readonly endContent: string
  readonly txns: ReadonlyArray<{ readonly patches: ReadonlyArray<readonly [number, number, string]> }>
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

export const traceFile = (): string => process.env.TRACE_FILE ?? join(repoRoot, '..', 'shared', 'data', 'automerge-paper.json.gz')

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
