import { Worker } from 'node:worker_threads'
import type { MergeReply, MergeRequest } from './merge-worker.js'

/**
 * Merges updates into a snapshot (as `mergeToSnapshot` does) on a worker thread, so that compacting a
 * big document does not stall every socket of the process: the automerge-paper document (311 KB) takes
 * 30-60 ms to merge. One worker, started on first use, not keeping the process alive; if it dies, the
 * merges it held fail (the caller's compaction is retried later) and the next merge starts a new one.
 */
export class SnapshotMerger {
  #worker: Worker | null = null
  #nextId = 0
  readonly #waiting = new Map<number, { resolve: (snapshot: Uint8Array) => void, reject: (error: Error) => void }>()
  #closed = false

  merge (updates: readonly Uint8Array[]): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new Error('snapshot merger closed'))
    const worker = this.#worker ?? this.#start()
    const id = ++this.#nextId
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      if (this.#waiting.size === 1) worker.ref()
      const request = pack(id, updates)
      worker.postMessage(request, [request.packed.buffer as ArrayBuffer])
    })
  }

  #start (): Worker {
    const worker = new Worker(new URL('./merge-worker.js', import.meta.url))
    worker.unref()
    worker.on('message', (reply: MergeReply) => {
      const waiter = this.#waiting.get(reply.id)
      if (waiter === undefined) return
      this.#waiting.delete(reply.id)
      if (this.#waiting.size === 0) worker.unref()
      if ('snapshot' in reply) waiter.resolve(reply.snapshot)
      else waiter.reject(new Error(`merging updates failed: ${reply.error}`))
    })
    const fail = (error: Error): void => {
      if (this.#worker === worker) this.#worker = null
      const waiting = [...this.#waiting.values()]
      this.#waiting.clear()
      for (const waiter of waiting) waiter.reject(error)
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`snapshot merge worker exited with ${code}`)))
    this.#worker = worker
    return worker
  }

  /** Stops the worker; merges still waiting fail. */
  async close (): Promise<void> {
    this.#closed = true
    const worker = this.#worker
    this.#worker = null
    if (worker !== null) await worker.terminate()
  }
}

/** One buffer for all the updates: posted as a transfer, where views into shared pools would be copied whole. */
const pack = (id: number, updates: readonly Uint8Array[]): MergeRequest => {
  let total = 0
  const ends: number[] = []
  for (const update of updates) ends.push(total += update.length)
  const packed = new Uint8Array(total)
  updates.forEach((update, i) => packed.set(update, ends[i - 1] ?? 0))
  return { id, packed, ends }
}
