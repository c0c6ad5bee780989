import type { Peer } from './peer.js'
import { SyncError } from './errors.js'
import type { Claim } from './storage/storage.js'
import type { Admission, QueuedContent } from './update-admission.js'

/** An update waiting for its commit. */
export interface PendingUpdate {
  readonly update: Uint8Array
  /** The peer that sent it; closed if the commit fails, so that it resyncs. */
  readonly from: Peer | null
  /** Already in the document (a server-side edit): commit, then broadcast, but do not apply again. */
  readonly applied: boolean
  readonly done: ((error?: Error) => void) | null
  /** The ids its structs take (see `Storage.append`). */
  readonly claims: readonly Claim[]
}

/**
 * One room's updates between admission and their commit: queued, then in flight (taken by the group
 * committer), then stored or failed. It knows how far they take each client beyond the room's document,
 * which is what admission checks the next update against, and resolves `flushed` once none is left.
 */
export class PendingUpdates {
  #queued: PendingUpdate[] = []
  #inflight = 0
  readonly #reach = new Map<number, number>()
  #depth = 0
  #subdocuments = 0
  #flushWaiters: Array<() => void> = []

  /** How far the queued and in-flight updates take each client they extend. */
  get reach (): ReadonlyMap<number, number> {
    return this.#reach
  }

  /** The deepest level the queued and in-flight updates nest types to (see `checkNesting`). */
  get depth (): number {
    return this.#depth
  }

  /** The subdocument references the queued and in-flight updates hold. */
  get subdocuments (): number {
    return this.#subdocuments
  }

  get queued (): number {
    return this.#queued.length
  }

  /** Queues `item`, which takes the clients in `reach` that far, nests types `depth` deep and holds `subdocuments`. */
  add (item: PendingUpdate, { reach, depth, subdocuments }: { reach: ReadonlyMap<number, number>, depth: number, subdocuments: number } = { reach: new Map(), depth: 0, subdocuments: 0 }): void {
    this.#queued.push(item)
    for (const [client, clock] of reach) this.#reach.set(client, clock)
    this.#depth = Math.max(this.#depth, depth)
    this.#subdocuments += subdocuments
  }

  /** Everything queued, now in flight. */
  take (): PendingUpdate[] {
    const batch = this.#queued
    this.#queued = []
    this.#inflight += batch.length
    return batch
  }

  /** `batch` is stored, and applied by the room. */
  stored (batch: readonly PendingUpdate[]): void {
    this.#inflight -= batch.length
    this.settle()
  }

  /**
   * Storing `batch` failed. Returns the updates that fail with it: the batch, and what was queued while it
   * was in flight, since that was admitted on top of it and may depend on it. Server-side edits are in
   * the document already; they stay queued, to be stored by a later commit. Call `settle` after telling
   * the failed updates' senders.
   */
  fail (batch: readonly PendingUpdate[]): PendingUpdate[] {
    this.#inflight -= batch.length
    const failed = [...batch, ...this.#queued.filter((item) => !item.applied)]
    this.#queued = [...this.#queued, ...batch].filter((item) => item.applied)
    // Nothing failed reaches the document, and what stays queued is in it already.
    this.#reach.clear()
    this.#depth = 0
    this.#subdocuments = 0
    return failed
  }

  /**
   * Storage refused `batch` (another instance committed under ids it takes): it goes back to the front
   * of the queue, to be admitted again by the room with everything queued after it (`drain`).
   */
  refused (batch: readonly PendingUpdate[]): void {
    this.#inflight -= batch.length
    this.#queued = [...batch, ...this.#queued]
  }

  /** Everything queued, taken out; forgets how far it reached. */
  drain (): PendingUpdate[] {
    const all = this.#queued
    this.#queued = []
    this.#reach.clear()
    this.#depth = 0
    this.#subdocuments = 0
    return all
  }

  /**
   * Admits everything queued again, in order, with `admit` (after storage refused a batch and the room
   * read what others committed): what the room holds now is acknowledged, what depends on content it
   * lacks goes to `incomplete`, what `admit` throws for goes to `refuse` with the error, and the rest is
   * queued again as admitted. Server-side edits are in the document already and stay as they are.
   */
  readmit (admit: (update: Uint8Array, queued: ReadonlyMap<number, number>, content: QueuedContent) => Admission, outcome: {
    incomplete (item: PendingUpdate): void
    refuse (item: PendingUpdate, error: SyncError): void
  }): void {
    for (const item of this.drain()) {
      if (item.applied) {
        this.add(item)
        continue
      }
      let admitted: Admission
      try {
        admitted = admit(item.update, this.#reach, this)
      } catch (error) {
        outcome.refuse(item, error instanceof SyncError ? error : new SyncError('BAD_UPDATE'))
        continue
      }
      if (admitted === 'known') item.done?.()
      else if (admitted === 'incomplete') outcome.incomplete(item)
      else this.add({ ...item, update: admitted.update, claims: admitted.claims }, admitted)
    }
    this.settle()
  }

  /** Resolves when every update queued so far is stored (or failed). */
  flushed (): Promise<void> {
    if (this.#queued.length === 0 && this.#inflight === 0) return Promise.resolve()
    return new Promise((resolve) => this.#flushWaiters.push(resolve))
  }

  /** Resolves the `flushed` waiters if nothing is queued or in flight. */
  settle (): void {
    if (this.#queued.length > 0 || this.#inflight > 0) return
    this.#reach.clear()
    this.#depth = 0
    this.#subdocuments = 0
    const waiters = this.#flushWaiters
    this.#flushWaiters = []
    for (const resolve of waiters) resolve()
  }
}
