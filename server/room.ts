import * as random from 'lib0/random'
import * as Y from 'yjs'
import type * as awarenessProtocol from 'y-protocols/awareness'
import type { Logger } from 'pino'
import type { Bus, BusMessage, BusSubscription } from './bus/bus.js'
import { CommitSequence } from './commit-sequence.js'
import { SyncError } from './errors.js'
import type { Peer } from './peer.js'
import { PendingUpdates, type PendingUpdate } from './pending-updates.js'
import * as protocol from './protocol.js'
import { RoomAwareness } from './room-awareness.js'
import { RoomCompaction } from './room-compaction.js'
import type { Storage } from './storage/storage.js'
import { admitUpdate, claimsOf, isEmptyUpdate } from './update-admission.js'
import { applyStored, collectDeepTypes, stateBefore } from './apply-stored.js'

/** Transaction origins: who applied what to a room's document. Anything else is a server-side edit. */
const ORIGIN_LOAD = Symbol('load')
const ORIGIN_COMMITTED = Symbol('committed')
const ORIGIN_BUS = Symbol('bus')

/** The group committer, as a room sees it. */
export interface CommitQueue {
  schedule (room: Room): void
}

export interface RoomContext {
  readonly storage: Storage
  readonly commits: CommitQueue
  readonly bus: Bus | null
  readonly log: Logger
  /** Compact once this many log rows have accumulated. */
  readonly compactAfterRows: number
  /** Hears of each read of commits the bus did not bring, and of each batch storage refused (metrics). */
  readonly onCatchUp?: () => void
  readonly onRefused?: () => void
  /** Awareness states the room admits from its clients (default DEFAULT_MAX_AWARENESS_STATES_PER_ROOM). */
  readonly maxAwarenessStates?: number
  /** Hears of stored updates that could not be applied (see `applyStored`): skipped, or refused after their commit. */
  readonly onSkipped?: (count: number) => void
  /** At most one awareness frame per this many ms (see awareness-coalescing.ts); default 50. */
  readonly awarenessIntervalMs?: number
}

export type RoomEvent = 'update' | 'awareness'

/** How often a peer whose updates keep depending on content the room lacks is asked for it. */
const ASK_INTERVAL_MS = 10_000

/**
 * How long a commit known to exist may take to arrive on the bus before the room reads it from storage.
 * Messages of different instances arrive out of commit order by a few milliseconds.
 */
export const CATCH_UP_GRACE_MS = 250

/** A client with an empty document: it needs the whole document, the same bytes for every such client. */
const isEmptyStateVector = (stateVector: Uint8Array): boolean => stateVector.length === 1 && stateVector[0] === 0

/**
 * One document and the peers editing it.
 *
 * The rule it keeps: an update reaches the document, and so any other peer, only after storage committed
 * it. A peer's update waits in `pending` until the group committer has stored it with everything else
 * that arrived in the same turn of the event loop; then all of them are applied in one transaction and
 * the resulting update is broadcast as one frame to every peer, the senders included.
 */
export class Room {
  readonly name: string
  readonly doc: Y.Doc
  readonly awareness: awarenessProtocol.Awareness
  /** Resolves when the stored document has been applied; peers are served only after that. */
  readonly loaded: Promise<void>
  /** The joined peers. */
  readonly peers = new Set<Peer>()
  /** Connections, polls and server-side users holding the room in memory. */
  holds = 0
  idleTimer: NodeJS.Timeout | null = null

  readonly #ctx: RoomContext
  readonly #pending = new PendingUpdates()
  /** When each peer was last asked for content its updates depend on (see #askForMissing). */
  #askedAt = new WeakMap<Peer, number>()
  /** The last server-side change (`transact`): the next one starts after it is stored and applied. */
  #transacting: Promise<unknown> = Promise.resolve()
  /** The client id of server-side changes: neither the document's own nor any client's. */
  readonly #editorID = random.uint32()
  /** The awareness and which peer announced which state of it. */
  readonly #awareness: RoomAwareness
  readonly #compaction: RoomCompaction
  /** Which commits the document holds, with storage that numbers them (see `Storage.heads`). */
  readonly #commits: CommitSequence
  readonly #tracked: boolean
  /** Storage refused a batch: the queue waits, out of the committer's reach, to be admitted again. */
  #readmitting = false
  /** What applying a committed batch added to the document (see `committed`). */
  #committedDelta: Uint8Array | null = null
  #subscription: BusSubscription | null = null
  #busBacklog: BusMessage[] | null = []
  #listeners = new Set<(event: RoomEvent) => void>()
  #destroyed = false
  /**
   * Frames that depend only on the document's current state, encoded once per version and shared by
   * every peer that asks: step 1 for each join, and the whole document as step 2 for each fresh client
   * (a storm after a restart asks for it thousands of times). Any document change clears them.
   */
  #step1Frame: Uint8Array | null = null
  /** Updates applied in the current task, sent as one frame when it ends (see #sendUpdate). */
  #outbox: Uint8Array[] = []
  #fullStep2Frame: Uint8Array | null = null

  constructor (name: string, ctx: RoomContext, after: Promise<void> = Promise.resolve()) {
    this.name = name
    this.#ctx = ctx
    this.#compaction = new RoomCompaction(name, ctx.storage, ctx.log, ctx.compactAfterRows)
    this.#tracked = ctx.storage.heads !== undefined
    this.#commits = new CommitSequence({
      graceMs: CATCH_UP_GRACE_MS,
      read: async (after) => {
        // A read before the load would be applied before it, and leave the load's frames stale.
        await this.loaded
        return await ctx.storage.load(name, after)
      },
      apply: (updates) => {
        ctx.onCatchUp?.()
        if (!this.#destroyed) this.#applyStored(updates, ORIGIN_BUS)
      },
      failed: (error) => { ctx.log.error({ room: name, err: error }, 'catching up from storage failed') },
    })
    // A guid of our own: Yjs would otherwise draw a random UUID, one crypto call per character.
    this.doc = new Y.Doc({ gc: true, guid: name, gcFilter: collectDeepTypes })
    this.#awareness = new RoomAwareness(this.doc, {
      broadcast: (frame, own) => {
        for (const peer of this.peers) peer.send(peer === own?.peer ? own.frame : frame)
        this.#notify('awareness')
      },
      publish: (update) => this.#publish({ kind: 'awareness', data: update }),
    }, ctx.maxAwarenessStates, ctx.awarenessIntervalMs)
    this.awareness = this.#awareness.awareness
    this.loaded = this.#load(after)
    this.loaded.catch(() => {})
  }

  async #load (after: Promise<void>): Promise<void> {
    await after
    // Subscribe before reading storage: whatever is published from now on arrives on the bus, and
    // whatever was published before is already committed, so the load below contains it.
    if (this.#ctx.bus !== null) {
      this.#subscription = await this.#ctx.bus.subscribe(this.name, {
        message: (message) => this.#onBusMessage(message),
        gap: () => { void this.reload() },
      })
    }
    const stored = await this.#ctx.storage.load(this.name)
    // Applied before the room listens: Yjs would otherwise encode the whole document once more, for an
    // update event that nobody needs (27 ms of a 75 ms cold load of the automerge-paper document).
    const whole = this.#applyStored(stored.updates, ORIGIN_LOAD).length === 0
    this.#commits.caughtUp(stored.seq)
    this.doc.on('update', this.#onDocUpdate)
    // A compacted room is its snapshot: those bytes are the whole document, as a fresh client needs it.
    if (whole && stored.updates.length === 1 && stored.logRows === 0) this.#fullStep2Frame = protocol.encodeSyncStep2(stored.updates[0]!)
    const backlog = this.#busBacklog ?? []
    this.#busBacklog = null
    for (const message of backlog) this.#onBusMessage(message)
    this.#compaction.stored(stored.logRows)
  }

  /**
   * Applies stored updates in one transaction (see `applyStored`), so that one that cannot be applied is
   * skipped, logged and counted, and cannot keep the room from loading or its commits from being answered.
   * Returns the indexes of those skipped; null for a throw while the transaction finished.
   */
  #applyStored (updates: readonly Uint8Array[], origin: symbol): Array<number | null> {
    const skipped: Array<number | null> = []
    applyStored(this.doc, updates, origin, (index, error) => {
      skipped.push(index)
      this.#ctx.log.error({ room: this.name, err: error, update: index }, index === null
        ? 'applying stored updates failed as the transaction finished; the document goes on without what was left undone'
        : 'skipped a stored update that cannot be applied')
    })
    if (skipped.length > 0) this.#ctx.onSkipped?.(skipped.length)
    return skipped
  }

  /**
   * Reads the commits the document lacks from storage (after the bus lost messages); what is new reaches
   * local peers as a normal update. Never rejects: a failure is logged.
   */
  async reload (): Promise<void> {
    try {
      await this.#commits.catchUp()
    } catch (error) {
      this.#ctx.log.error({ room: this.name, err: error }, 'reload after a bus gap failed')
    }
  }

  /**
   * Storage's latest commit of this room is `seq` (the periodic check, one query for every loaded room):
   * a commit whose bus message was lost, in a room that went quiet after it, is read from storage.
   */
  observeHead (seq: number): void {
    if (this.#busBacklog === null) this.#commits.exists(seq)
  }

  /** The commit the document holds with every one before it; undefined where storage does not number them. */
  get committedThrough (): number | undefined {
    return this.#tracked ? this.#commits.applied : undefined
  }

  /** Adds a peer: it receives sync step 1 and every known awareness state. Call after `loaded`. */
  join (peer: Peer): void {
    this.peers.add(peer)
    this.#step1Frame ??= protocol.encodeSyncStep1(Y.encodeStateVector(this.doc))
    peer.send(this.#step1Frame)
    this.#awareness.joined(peer)
  }

  /** Removes a peer and the awareness states it announced, telling everyone else. */
  leave (peer: Peer): void {
    if (!this.peers.delete(peer)) return
    this.#awareness.left(peer)
  }

  /** The joined peer that announced awareness client `client`, if any. */
  awarenessOwner (client: number): Peer | undefined {
    return this.#awareness.ownerOf(client)
  }

  /** Handles one decoded message from a joined peer. Throws SyncError for input the peer must be closed for. */
  receive (peer: Peer, message: protocol.Message): void {
    switch (message.type) {
      case 'sync-step1': {
        if (isEmptyStateVector(message.stateVector)) {
          this.#fullStep2Frame ??= protocol.encodeSyncStep2(Y.encodeStateAsUpdate(this.doc))
          peer.send(this.#fullStep2Frame)
          return
        }
        let update: Uint8Array
        try {
          update = Y.encodeStateAsUpdate(this.doc, message.stateVector)
        } catch {
          throw new SyncError('BAD_MESSAGE', 'sync step 1 carries an unreadable state vector')
        }
        peer.send(protocol.encodeSyncStep2(update))
        return
      }
      case 'sync-step2':
      case 'sync-update':
        if (!peer.canWrite) {
          if (!isEmptyUpdate(message.update)) peer.send(protocol.encodePermissionDenied('read-only access'))
          return
        }
        if (!this.submit(message.update, peer)) this.#askForMissing(peer)
        return
      case 'awareness':
        this.#awareness.receive(peer, message.update)
        return
      case 'query-awareness':
        this.#awareness.sendAll(peer)
        return
      case 'auth':
        return
    }
  }

  /** See `RoomAwareness.receiveFromClient`. */
  applyAwareness (update: Uint8Array): ReadonlySet<number> {
    return this.#awareness.receiveFromClient(update)
  }

  /**
   * Queues an update for the next group commit; it is applied and broadcast once stored. `done` is
   * called after that, or with the error if the commit failed. Returns false, calling nothing, for an
   * update that depends on content the room does not have (see `admitUpdate`): nothing of it is stored.
   * Throws BAD_UPDATE for an update that must never be stored.
   */
  submit (update: Uint8Array, from: Peer | null, done: ((error?: Error) => void) | null = null): boolean {
    const admitted = admitUpdate(this.doc, update, this.#pending.reach, this.#pending)
    if (admitted === 'incomplete') return false
    if (admitted === 'known') {
      done?.()
      return true
    }
    // Views into a socket's receive buffer must not outlive the message handler.
    this.#pending.add({ update: admitted.update === update ? update.slice() : admitted.update, from, applied: false, done, claims: admitted.claims }, admitted)
    this.#ctx.commits.schedule(this)
    return true
  }

  /**
   * A server-side change: runs `change` on a copy of the document and submits the update it made like a
   * client's, so that the change is stored before any client sees it. Resolves with what `change`
   * returned once the change is stored and sent; rejects, leaving the document as it was, if storing it
   * failed. Changes of one room run one after another, each on a copy holding the ones before it.
   */
  transact<T> (change: (doc: Y.Doc) => T): Promise<T> {
    const run = this.#transacting.then(async () => {
      const copy = new Y.Doc({ gc: true, guid: this.name, gcFilter: collectDeepTypes })
      Y.applyUpdate(copy, Y.encodeStateAsUpdate(this.doc))
      copy.clientID = this.#editorID
      const made: Uint8Array[] = []
      copy.on('update', (update: Uint8Array) => { made.push(update) })
      let result!: T
      copy.transact(() => { result = change(copy) })
      // Shared types `change` defined without content are no part of any update; the room knows them too.
      for (const [key, type] of copy.share) if (!this.doc.share.has(key)) this.doc.get(key, type.constructor as typeof Y.AbstractType<unknown>)
      copy.destroy()
      if (made.length > 0 && !await this.submitAndWait(made.length === 1 ? made[0]! : Y.mergeUpdates(made))) {
        throw new Error(`room ${this.name}: a server-side change depends on content the room no longer has`)
      }
      return result
    })
    this.#transacting = run.catch(() => {})
    return run
  }

  /**
   * `submit` as a promise: resolves to true once the update is stored and visible, or at once to false
   * if it depends on content the room does not have.
   */
  submitAndWait (update: Uint8Array): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (!this.submit(update, null, (error) => error === undefined ? resolve(true) : reject(error))) resolve(false)
    })
  }

  /**
   * Asks a peer whose update was refused as incomplete for what the room lacks: sync step 1, which a
   * client answers with a step 2 holding everything the room's state vector does not cover. Usually the
   * update raced the client's own step 2, which brings the missing content anyway. A client that lacks
   * the content itself (it is pending in its document too) is asked again at most every ASK_INTERVAL_MS.
   */
  #askForMissing (peer: Peer): void {
    const now = Date.now()
    if (now - (this.#askedAt.get(peer) ?? -Infinity) < ASK_INTERVAL_MS) return
    this.#askedAt.set(peer, now)
    this.#ctx.log.info({ room: this.name, peer: peer.label }, 'an update depends on content the room does not have; asked the client for it')
    this.#step1Frame ??= protocol.encodeSyncStep1(Y.encodeStateVector(this.doc))
    peer.send(this.#step1Frame)
  }

  /** Called by the group committer: the updates to store now (none while they wait to be admitted again). */
  takePending (): PendingUpdate[] {
    return this.#readmitting ? [] : this.#pending.take()
  }

  /**
   * Called by the group committer once `batch` is stored as commit `seq`. The bus message holds the whole
   * commit, whatever the document held before: a receiver that gets it holds that commit. Whatever
   * applying it does, every waiter is answered and the room goes on: an update Yjs throws on is refused
   * (its sender closed with BAD_UPDATE, left out of the bus message; every load skips it and the next
   * compaction drops it), the others are applied and broadcast.
   */
  committed (batch: readonly PendingUpdate[], seq: number): void {
    let refused = new Set<PendingUpdate>()
    try {
      if (!this.#destroyed) {
        // A catch-up read may have brought this commit already: then what applying it adds is not all of it.
        const broughtAlready = this.#tracked && this.#commits.has(seq)
        const fresh = batch.filter((item) => !item.applied)
        this.#committedDelta = null
        if (fresh.length > 0) refused = this.#applyCommitted(fresh)
        const serverEdits = batch.filter((item) => item.applied).map((item) => item.update)
        for (const update of serverEdits) this.#sendUpdate(update)
        if (this.#ctx.bus !== null) {
          // The message holds the whole commit, so that a receiver holding it holds that commit: what
          // applying it added (every struct, being new; deletions already here come with the commit that
          // made them), or, when that is not all of it, the batch merged.
          let parts = [...(this.#committedDelta === null ? [] : [this.#committedDelta]), ...serverEdits]
          if (broughtAlready || refused.size > 0 || parts.length === 0) parts = batch.filter((item) => !refused.has(item)).map((item) => item.update)
          // A commit whose every update was refused still goes out: the bus numbers commits.
          const data = parts.length === 0 ? new Uint8Array([0, 0]) : parts.length === 1 ? parts[0]! : Y.mergeUpdates(parts)
          this.#publish({ kind: 'update', data, ...(this.#tracked ? { seq } : {}) })
        }
        this.#committedDelta = null
        if (this.#tracked) this.#commits.holds(seq)
      }
    } finally {
      for (const item of batch) {
        try {
          item.done?.(refused.has(item) ? new SyncError('BAD_UPDATE', 'the update cannot be applied') : undefined)
        } catch (error) {
          this.#ctx.log.error({ room: this.name, err: error }, 'a commit waiter threw')
        }
      }
      this.#compaction.stored(batch.length)
      this.#pending.stored(batch)
    }
  }

  /** Applies committed updates; returns those Yjs threw on, whose senders are closed with BAD_UPDATE. */
  #applyCommitted (fresh: readonly PendingUpdate[]): Set<PendingUpdate> {
    const skipped = this.#applyStored(fresh.map((item) => item.update), ORIGIN_COMMITTED)
    const refused = new Set<PendingUpdate>()
    for (const index of skipped) if (index !== null) refused.add(fresh[index]!)
    for (const item of refused) {
      const failure = new SyncError('BAD_UPDATE', 'the update cannot be applied')
      item.from?.close(failure.closeCode, failure.message)
    }
    // Yjs threw while finishing the transaction, before its update event: local peers get what the batch
    // brought from where it started, so that broadcasting goes on (the bus gets the commit as always).
    if (skipped.includes(null)) this.#sendUpdate(Y.encodeStateAsUpdate(this.doc, stateBefore(this.doc, fresh.map((item) => item.update))))
    return refused
  }

  /**
   * Called by the group committer when storing `batch` failed: nothing of it, nor of what was queued
   * after it, is applied or sent.
   */
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
    if (this.#pending.queued > 0) setTimeout(() => this.#ctx.commits.schedule(this), 1000).unref()
    this.#pending.settle()
  }

  /**
   * Called by the group committer when storage refused `batch`: another instance committed structs under
   * ids it takes, after the last commit this document holds in order. The room reads what it lacks, then
   * admits the batch and everything queued after it again, against the whole committed log: what others
   * committed already is dropped (and acknowledged), what differs from it is refused with
   * CONFLICTING_UPDATE, and the rest is committed.
   */
  refused (batch: readonly PendingUpdate[]): void {
    this.#ctx.onRefused?.()
    this.#pending.refused(batch)
    if (this.#readmitting) return
    this.#readmitting = true
    this.#commits.catchUp().then(() => {
      this.#readmitting = false
      this.#pending.readmit((update, queued, content) => {
        if (this.#destroyed) return 'incomplete'
        return admitUpdate(this.doc, update, queued, content)
      }, {
        incomplete: (item) => {
          item.done?.(new Error(`room ${this.name}: an update depends on content the room does not have`))
          if (item.from !== null && !this.#destroyed) this.#askForMissing(item.from)
        },
        refuse: (item, error) => {
          this.#ctx.log.warn({ room: this.name, peer: item.from?.label, err: error }, 'refused an update: another instance committed other content under its ids')
          item.done?.(error)
          item.from?.close(error.closeCode, error.message)
        },
      })
      if (this.#pending.queued > 0) this.#ctx.commits.schedule(this)
    }, (error: unknown) => {
      this.#readmitting = false
      this.commitFailed([], error instanceof Error ? error : new Error(String(error)))
    })
  }

  /** Resolves when every update submitted so far is committed (or failed). */
  flushed (): Promise<void> {
    return this.#pending.flushed()
  }

  /** Calls `listener` after every update or awareness change that reached local peers. */
  observe (listener: (event: RoomEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    this.#step1Frame = null
    this.#fullStep2Frame = null
    if (origin === ORIGIN_COMMITTED || origin === ORIGIN_BUS) {
      if (origin === ORIGIN_COMMITTED) this.#committedDelta = update
      this.#sendUpdate(update)
      return
    }
    // A server-side edit (embedding API): it is in the document already; store it, then send it.
    this.#pending.add({ update, from: null, applied: true, done: null, claims: claimsOf(update) })
    this.#ctx.commits.schedule(this)
  }

  #onBusMessage (message: BusMessage): void {
    if (this.#destroyed) return
    if (this.#busBacklog !== null) {
      this.#busBacklog.push(message)
      return
    }
    try {
      if (message.kind === 'update') {
        this.#applyStored([message.data], ORIGIN_BUS)
        if (message.seq !== undefined && this.#tracked) this.#commits.holds(message.seq)
      } else this.#awareness.receiveFromBus(message.data)
    } catch (error) {
      this.#ctx.log.error({ room: this.name, err: error }, `ignored a bus ${message.kind} that cannot be applied`)
    }
  }

  /**
   * Everything applied in one task goes out as one frame, merged, at the end of that task: a group
   * commit is applied as one transaction already, and a bus read of many messages becomes one frame too.
   * Batching is self-clocked: while a broadcast to many sockets runs, new messages wait in the kernel, the
   * next turn reads them all, and they are committed and sent together. A quiet room sends each update at
   * once; a busy one sends bigger frames, never later than the turn after the one that stored them.
   */
  #sendUpdate (update: Uint8Array): void {
    this.#outbox.push(update)
    if (this.#outbox.length === 1) queueMicrotask(this.#flushOutbox)
  }

  #flushOutbox = (): void => {
    const updates = this.#outbox
    this.#outbox = []
    if (updates.length === 0 || this.#destroyed) return
    this.#broadcast(protocol.encodeSyncUpdate(updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates)), 'update')
  }

  #broadcast (frame: Uint8Array, event: RoomEvent): void {
    for (const peer of this.peers) peer.send(frame)
    this.#notify(event)
  }

  #notify (event: RoomEvent): void {
    for (const listener of this.#listeners) listener(event)
  }

  #publish (message: BusMessage): void {
    const bus = this.#ctx.bus
    if (bus === null) return
    bus.publish(this.name, message).catch((error: unknown) => {
      this.#ctx.log.warn({ room: this.name, err: error }, 'bus publish failed; other instances catch up from storage')
    })
  }

  /** Waits for pending commits, compacts, and frees the document. The room must have no peers. */
  async close (): Promise<void> {
    await this.loaded.catch(() => {})
    await this.flushed()
    if (this.#compaction.rows > 0) await this.#compaction.run()
    this.destroy()
  }

  /** Frees the room at once, without waiting for anything. */
  destroy (): void {
    if (this.#destroyed) return
    this.#destroyed = true
    this.#commits.destroy()
    this.#listeners.clear()
    void this.#subscription?.close().catch(() => {})
    this.#awareness.destroy()
    this.doc.destroy()
  }
}
