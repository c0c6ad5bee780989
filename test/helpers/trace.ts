import { findTrace, readTrace, type Trace } from '../../bench/trace.js'

export type { Trace }

/** The automerge-paper trace, found where the bench finds it; null when absent (CI must have it: it throws there instead). */
export const loadTrace = (): Trace | null => {
  const file = findTrace()
  if (file === null) {
    if (process.env.CI === 'true') throw new Error('the editing trace automerge-paper.json.gz is missing: put it in ../shared/data/ or set TRACE_FILE')
    return null
  }
  return readTrace(file)
}

/** Every patch in order, flattened. */
export const patchesOf = (trace: Trace): Array<readonly [number, number, string]> => trace.txns.flatMap((t) => t.patches)
