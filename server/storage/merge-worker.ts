/**
 * The worker behind SnapshotMerger: merges the updates it is sent and posts the snapshot back. A big
 * document takes tens of milliseconds to merge; here that time is not taken from the sockets.
 */
import { parentPort } from 'node:worker_threads'
import { mergeToSnapshot } from './storage.js'

/** The updates packed into one buffer (transferred, not copied): update i is `packed[ends[i - 1] ?? 0, ends[i])`. */
export interface MergeRequest { readonly id: number, readonly packed: Uint8Array, readonly ends: readonly number[] }
/** The snapshot, and how many of the updates could not be applied and are left out of it. */
export type MergeReply = { readonly id: number, readonly snapshot: Uint8Array, readonly skipped: number } | { readonly id: number, readonly error: string }

const port = parentPort
if (port === null) throw new Error('merge-worker.js runs as a worker thread only')
port.on('message', ({ id, packed, ends }: MergeRequest) => {
  let reply: MergeReply
  try {
    const updates = ends.map((end, i) => packed.subarray(ends[i - 1] ?? 0, end))
    let skipped = 0
    const snapshot = mergeToSnapshot(updates, () => { skipped++ })
    reply = { id, snapshot, skipped }
  } catch (error) {
    reply = { id, error: error instanceof Error ? error.message : String(error) }
  }
  port.postMessage(reply, 'snapshot' in reply ? [reply.snapshot.buffer as ArrayBuffer] : [])
})
