/**
 * The worker behind SnapshotMerger: merges the updates it is sent and posts the snapshot back. A big
 * document takes tens of milliseconds to merge; here that time is not taken from the sockets.
 */
import { parentPort } from 'node:worker_threads'
import { mergeToSnapshot } from './storage.js'

/** The updates packed into one buffer (transferred, not copied): update i is `packed[ends[i - 1] ?? 0, ends[i])`. */
export interface MergeRequest { readonly id: number, readonly packed: Uint8Array, readonly ends: readonly number[] }
export type MergeReply = { readonly id: number, readonly snapshot: Uint8Array } | { readonly id: number, readonly error: string }

const port = parentPort
if (port === null) throw new Error('merge-worker.js runs as a worker thread only')
port.on('message', ({ id, packed, ends }: MergeRequest) => {
  let reply: MergeReply
  try {
    const updates = ends.map((end, i) => packed.subarray(ends[i - 1] ?? 0, end))
    reply = { id, snapshot: mergeToSnapshot(updates) }
  } catch (error) {
    reply = { id, error: error instanceof Error ? error.message : String(error) }
  }
  port.postMessage(reply, 'snapshot' in reply ? [reply.snapshot.buffer as ArrayBuffer] : [])
})
