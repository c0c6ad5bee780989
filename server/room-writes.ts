/**
 * A room's write path, after the transport has decoded a frame and the room's message rules have taken an
 * update: admit (update-admission.ts) → queue → group commit (committer.ts) → apply → deliver. The rule it
 * keeps: an update reaches the document, and so any peer, only after storage committed it. Updates
 * queued in one turn of the event loop are stored by one commit, then applied in one transaction; the room
 * delivers what that transaction changed as one update to every peer and to other instances.
 */
import * as random from 'lib0/random'
import type { Logger } from 'pino'
import * as Y from 'yjs'
import { SyncError } from './errors.js'
import type { Peer } from './peer.js'
import { PendingUpdates, type PendingUpdate } from './pending-updates.js'
import { stateBefore } from './apply-stored.js'
import { admitUpdate, claimsOf, type Admission } from './update-admission.js'

/** What the group committer stores and reports back to: one room's writes. */
export interface Committable {
  readonly name: string
  /** The commit the document holds with every one before it (see `Storage.append`'s `after`). */
  readonly committedThrough: number | undefined
  /** The updates to store now (none while they wait to be admitted again). */
  takePending (): PendingUpdate[]
  /** `batch` is stored as commit `seq`. */
  committed (batch: readonly PendingUpdate[], seq: number): void
  /** Storing `batch` failed: nothing of it, nor of what was queued after it, is applied or sent. */
  commitFailed (batch: readonly PendingUpdate[], error: Error): void
  /** Storage refused `batch`: another instance committed under ids it takes. */
  refused (batch: readonly PendingUpdate[]): void
}

/** The group committer, as a room's writes see it. */
export interface CommitQueue {
  schedule (writes: Committable): void
}

/** What the write path needs of its room. */
export interface WriteTarget {
  readonly name: string
  readonly doc: Y.Doc
  readonly log: Logger
  /** See `Committable.committedThrough`. */
  committedThrough (): number | undefined
  /**
   * Applies stored updates to the document in one transaction; the room sends what they change to its
   * peers. Returns the indexes of those Yjs threw on (null: as the transaction finished).
   */
  apply (updates: readonly Uint8Array[]): Array<number | null>
  /** Sends a stored update that is in the document already (a server-side edit) to the room's peers. */
  deliver (update: Uint8Array): void
  /** Commit `seq` is stored: other instances hear of it, all of it in `data()` (made only if there are any). */
  published (data: () => Uint8Array, seq: number): void
  /** Whether the document holds commit `seq` already (a catch-up read brought it). */
  holdsCommit (seq: number): boolean
  /** `rows` rows were appended to the room's log. */
  stored (rows: number): void
  /** Reads the commits the document lacks from storage. */
  catchUp (): Promise<void>
  /** Sync step 1 of the document as it is now. */
  step1 (): Uint8Array
}

/** An update a client sent. */
export interface ReceivedUpdate {
  readonly update: Uint8Array
}

/** How often a peer whose updates keep depending on content the room lacks is asked for it. */
export const ASK_INTERVAL_MS = 1000

export class RoomWrites implements Committable {
  readonly name: string
  readonly #target: WriteTarget
  readonly #commits: CommitQueue
  readonly #pending = new PendingUpdates()
  /** The last server-side change (`transact`): the next one starts after it is stored and applied. */
  #transacting: Promise<unknown> = Promise.resolve()
  /** The client id of server-side changes: neither the document's own nor any client's. */
  readonly #editorID = random.uint32()
  /** Storage refused a batch: the queue waits, out of the committer's reach, to be admitted again. */
  #readmitting = false
  /** When each peer was last asked for content its updates depend on (see `askForMissing`). */
  readonly #askedAt = new WeakMap<Peer, number>()
  /** Peers to ask once more when their interval has passed: an update of theirs was dropped meanwhile. */
  readonly #askLater = new Map<Peer, NodeJS.Timeout>()
  #closed = false

  constructor (target: WriteTarget, commits: CommitQueue) {
    this.name = target.name
    this.#target = target
    this.#commits = commits
  }

  /**
   * Decides what of each update the room stores (see `admitUpdate`), all of them before any is queued:
   * one that must never be stored throws BAD_UPDATE and leaves the room as it was. Each is admitted on
   * top of those before it.
   */
  admit (updates: readonly ReceivedUpdate[]): Admission[] {
    const doc = this.#target.doc
    if (updates.length === 1) return [admitUpdate(doc, updates[0]!.update, this.#pending.reach, this.#pending)]
    const reach = new Map(this.#pending.reach)
    const content = { depth: this.#pending.depth, subdocuments: this.#pending.subdocuments }
    return updates.map(({ update }) => {
      const admitted = admitUpdate(doc, update, reach, content)
      if (typeof admitted !== 'object') return admitted
      for (const [client, clock] of admitted.reach) reach.set(client, clock)
      content.depth = Math.max(content.depth, admitted.depth)
      content.subdocuments += admitted.subdocuments
      return admitted
    })
  }

  /**
   * Queues an admitted update for the next group commit. `done` is called once it is stored, applied and
   * sent, or with the error if the commit failed; at once for one the room holds already. Returns false,
   * calling nothing, for an update that depends on content the room does not have.
   */
  queue (admitted: Admission, original: Uint8Array, from: Peer | null, done: ((error?: Error) => void) | null = null): boolean {
    if (admitted === 'incomplete') return false
    if (admitted === 'known') {
      done?.()
      return true
    }
    // Views into a socket's receive buffer must not outlive the message handler.
    const update = admitted.update === original ? original.slice() : admitted.update
    this.#pending.add({ update, from, applied: false, done, claims: admitted.claims }, admitted)
    this.#commits.schedule(this)
    return true
  }

  /** `admit` and `queue` for one update. Throws BAD_UPDATE for an update that must never be stored. */
  submit (received: ReceivedUpdate, from: Peer | null, done: ((error?: Error) => void) | null = null): boolean {
    return this.queue(this.admit([received])[0]!, received.update, from, done)
  }

  /**
   * `submit` as a promise: resolves to true once the update is stored and visible, or at once to false
   * if it depends on content the room does not have. Rejects with BAD_UPDATE for one that must never be
   * stored, STORAGE_UNAVAILABLE if storing failed.
   */
  submitAndWait (update: Uint8Array): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (!this.submit({ update }, null, (error) => error === undefined ? resolve(true) : reject(error))) resolve(false)
    })
  }

  /** A server-side edit made on the document directly: it is in the document; store it, then deliver it. */
  edited (update: Uint8Array): void {
    this.#pending.add({ update, from: null, applied: true, done: null, claims: claimsOf(update) })
    this.#commits.schedule(this)
  }

  /**
   * A server-side change: runs `change` on a copy of the document and submits the update it made like a
   * client's, so that the change is stored before any client sees it. Resolves with what `change`
   * returned once the change is stored and sent; rejects, leaving the document as it was, if storing it
   * failed. Changes of one room run one after another, each on a copy holding the ones before it.
   */
  transact<T> (change: (doc: Y.Doc) => T): Promise<T> {
    const { doc, name } = this.#target
    const run = this.#transacting.then(async () => {
      const copy = new Y.Doc({ gc: true, guid: name })
      Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc))
      copy.clientID = this.#editorID
      const made: Uint8Array[] = []
      copy.on('update', (update: Uint8Array) => { made.push(update) })
      let result!: T
      copy.transact(() => { result = change(copy) })
      // Shared types `change` defined without content are no part of any update; the room knows them too.
      for (const [key, type] of copy.share) if (!doc.share.has(key)) doc.get(key, type.constructor as typeof Y.AbstractType<unknown>)
      copy.destroy()
      if (made.length > 0 && !await this.submitAndWait(made.length === 1 ? made[0]! : Y.mergeUpdates(made))) {
        throw new Error(`room ${name}: a server-side change depends on content the room no longer has`)
      }
      return result
    })
    this.#transacting = run.catch(() => {})
    return run
  }

  get committedThrough (): number | undefined {
    return this.#target.committedThrough()
  }

  takePending (): PendingUpdate[] {
    return this.#readmitting ? [] : this.#pending.take()
  }

  /**
   * The bus message holds the whole commit, whatever the document held before: a receiver holds that
   * commit. Whatever applying it does, every waiter is answered and the room goes on: an update Yjs throws
   * on is refused (its sender closed with BAD_UPDATE, left out of the bus message; every load skips it and
   * the next compaction drops it), the others are applied and sent.
   */
  committed (batch: readonly PendingUpdate[], seq: number): void {
    let refused = new Set<PendingUpdate>()
    try {
      if (!this.#closed) {
        // A catch-up read may have brought this commit already: then what applying it adds is not all of it.
        const broughtAlready = this.#target.holdsCommit(seq)
        const fresh = batch.filter((item) => !item.applied)
        let delta: Uint8Array | null = null
        if (fresh.length > 0) ({ refused, delta } = this.#applyCommitted(fresh))
        const serverEdits = batch.filter((item) => item.applied).map((item) => item.update)
        for (const update of serverEdits) this.#target.deliver(update)
        // The message holds the whole commit, so that a receiver holding it holds that commit: what applying
        // it added (every struct, being new; deletions already here come with the commit that made them),
        // or, when that is not all of it, the batch merged.
        this.#target.published(() => {
          let parts = [...(delta === null ? [] : [delta]), ...serverEdits]
          if (broughtAlready || refused.size > 0 || parts.length === 0) parts = batch.filter((item) => !refused.has(item)).map((item) => item.update)
          // A commit whose every update was refused still goes out: the bus numbers commits.
          return parts.length === 0 ? new Uint8Array([0, 0]) : parts.length === 1 ? parts[0]! : Y.mergeUpdates(parts)
        }, seq)
      }
    } finally {
      for (const item of batch) {
        try {
          item.done?.(refused.has(item) ? new SyncError('BAD_UPDATE', 'the update cannot be applied') : undefined)
        } catch (error) {
          this.#target.log.error({ room: this.name, err: error }, 'a commit waiter threw')
        }
      }
      this.#target.stored(batch.length)
      this.#pending.stored(batch)
    }
  }

  /**
   * Applies committed updates; returns those Yjs threw on, whose senders are closed with BAD_UPDATE, and
   * what applying them added to the document.
   */
  #applyCommitted (fresh: readonly PendingUpdate[]): { refused: Set<PendingUpdate>, delta: Uint8Array | null } {
    const updates = fresh.map((item) => item.update)
    let delta: Uint8Array | null = null
    const added = (update: Uint8Array): void => { delta = update }
    const { doc } = this.#target
    doc.on('update', added)
    let skipped: Array<number | null>
    try {
      skipped = this.#target.apply(updates)
    } finally {
      doc.off('update', added)
    }
    const refused = new Set<PendingUpdate>()
    for (const index of skipped) if (index !== null) refused.add(fresh[index]!)
    for (const item of refused) {
      const failure = new SyncError('BAD_UPDATE', 'the update cannot be applied')
      item.from?.close(failure.closeCode, failure.message)
    }
    // Yjs threw while finishing the transaction, before its update event: local peers get what the batch
    // brought from where it started, so that sending goes on (the bus gets the commit as always).
    if (skipped.includes(null)) this.#target.deliver(Y.encodeStateAsUpdate(doc, stateBefore(doc, updates)))
    return { refused, delta }
  }

  commitFailed (batch: readonly PendingUpdate[], error: Error): void {
    const senders = new Set<Peer>()
    for (const item of this.#pending.fail(batch)) {
      if (item.from !== null) senders.add(item.from)
      item.done?.(new SyncError('STORAGE_UNAVAILABLE', error.message))
    }
    // The senders still hold their edits: closed, they reconnect and send them again in sync step 2.
    for (const peer of senders) {
      const failure = new SyncError('STORAGE_UNAVAILABLE')
      peer.close(failure.closeCode, failure.message)
    }
    if (this.#pending.queued > 0) setTimeout(() => this.#commits.schedule(this), 1000).unref()
    this.#pending.settle()
  }

  /**
   * The room reads what it lacks, then admits the batch and everything queued after it again, against the
   * whole committed log: what others committed already is dropped (and acknowledged), what differs from it
   * is refused with CONFLICTING_UPDATE, and the rest is committed.
   */
  refused (batch: readonly PendingUpdate[]): void {
    this.#pending.refused(batch)
    if (this.#readmitting) return
    this.#readmitting = true
    const { doc, log, name } = this.#target
    this.#target.catchUp().then(() => {
      this.#readmitting = false
      this.#pending.readmit((update, queued, content) => this.#closed ? 'incomplete' : admitUpdate(doc, update, queued, content), {
        incomplete: (item) => {
          item.done?.(new Error(`room ${name}: an update depends on content the room does not have`))
          if (item.from !== null && !this.#closed) this.askForMissing(item.from)
        },
        refuse: (item, error) => {
          log.warn({ room: name, peer: item.from?.label, err: error }, 'refused an update: another instance committed other content under its ids')
          item.done?.(error)
          item.from?.close(error.closeCode, error.message)
        },
      })
      if (this.#pending.queued > 0) this.#commits.schedule(this)
    }, (error: unknown) => {
      this.#readmitting = false
      this.commitFailed([], error instanceof Error ? error : new Error(String(error)))
    })
  }

  /**
   * Asks a peer whose update was refused as incomplete for what the room lacks: sync step 1, which a
   * client answers with a step 2 holding everything the room's state vector does not cover. Usually the
   * update raced the client's own step 2, which brings the missing content anyway. A client that lacks
   * the content itself (it is pending in its document too) is asked again at most every ASK_INTERVAL_MS;
   * an update dropped in between is asked for when the interval has passed, since it may be the last the
   * client sends (a chaos run's last edits waited 10-19 s for a reconnect when it was not).
   */
  askForMissing (peer: Peer): void {
    const now = Date.now()
    const wait = (this.#askedAt.get(peer) ?? -Infinity) + ASK_INTERVAL_MS - now
    if (wait > 0) {
      if (!this.#askLater.has(peer)) {
        const timer = setTimeout(() => {
          this.#askLater.delete(peer)
          if (!this.#closed) this.askForMissing(peer)
        }, wait)
        timer.unref()
        this.#askLater.set(peer, timer)
      }
      return
    }
    this.#askedAt.set(peer, now)
    this.#target.log.info({ room: this.name, peer: peer.label }, 'an update depends on content the room does not have; asked the client for it')
    peer.send(this.#target.step1())
  }

  /** Resolves when every update submitted so far is committed (or failed). */
  flushed (): Promise<void> {
    return this.#pending.flushed()
  }

  /** The room is freed: commits that finish from now on apply and send nothing. */
  close (): void {
    this.#closed = true
    for (const timer of this.#askLater.values()) clearTimeout(timer)
    this.#askLater.clear()
  }
}
