import * as Y from 'yjs'
import type * as awarenessProtocol from 'y-protocols/awareness'
import type { Logger } from 'pino'
import type { Bus, BusMessage, BusSubscription } from './bus/bus.js'
import { CommitSequence } from './commit-sequence.js'
import type { Peer } from './peer.js'
import * as protocol from './protocol.js'
import { RoomAwareness } from './room-awareness.js'
import { RoomCompaction } from './room-compaction.js'
import { RoomWrites, type CommitQueue, type ReceivedUpdate } from './room-writes.js'
import type { Storage } from './storage/storage.js'
import { SyncFrames } from './sync-frames.js'
import { isEmptyUpdate } from './update-admission.js'
import { applyStored, collectDeepTypes } from './apply-stored.js'

/** Transaction origins: who applied what to a room's document. Anything else is a server-side edit. */
const ORIGIN_LOAD = Symbol('load')
const ORIGIN_COMMITTED = Symbol('committed')
const ORIGIN_BUS = Symbol('bus')

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

/** A message as a room takes it. */
export type ReceivedMessage = protocol.Message
type UpdateMessage = Extract<ReceivedMessage, { type: 'sync-step2' | 'sync-update' }>
const isUpdate = (message: ReceivedMessage): message is UpdateMessage => message.type === 'sync-step2' || message.type === 'sync-update'

/**
 * How long a commit known to exist may take to arrive on the bus before the room reads it from storage.
 * Messages of different instances arrive out of commit order by a few milliseconds.
 */
export const CATCH_UP_GRACE_MS = 250

/**
 * One document and the peers editing it, and the rules of the y-websocket messages they send, the same
 * for every transport: a socket hands each message to `receive`, a long-poll request all of its messages
 * to `receiveAll`, and each gets what the room sends its peer. Updates take the write path
 * (room-writes.ts): stored first, then applied and delivered to every peer, the senders included.
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
  readonly #writes: RoomWrites
  /** The awareness and which peer announced which state of it. */
  readonly #awareness: RoomAwareness
  readonly #compaction: RoomCompaction
  /** Which commits the document holds, with storage that numbers them (see `Storage.heads`). */
  readonly #commits: CommitSequence
  readonly #tracked: boolean
  #subscription: BusSubscription | null = null
  #busBacklog: BusMessage[] | null = []
  #listeners = new Set<(event: RoomEvent) => void>()
  #destroyed = false
  readonly #frames: SyncFrames
  /** Updates applied in the current task, sent as one frame when it ends (see #sendUpdate). */
  #outbox: Uint8Array[] = []

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
    this.#frames = new SyncFrames(this.doc)
    this.#awareness = new RoomAwareness(this.doc, {
      broadcast: (frame) => this.#broadcast(frame, 'awareness'),
      publish: (update) => this.#publish({ kind: 'awareness', data: update }),
    }, ctx.maxAwarenessStates, ctx.awarenessIntervalMs)
    this.awareness = this.#awareness.awareness
    this.#writes = new RoomWrites({
      name,
      doc: this.doc,
      log: ctx.log,
      committedThrough: () => this.committedThrough,
      apply: (updates) => this.#destroyed ? [] : this.#applyStored(updates, ORIGIN_COMMITTED),
      deliver: (update) => this.#sendUpdate(update),
      published: (data, seq) => {
        if (ctx.bus !== null) this.#publish({ kind: 'update', data: data(), ...(this.#tracked ? { seq } : {}) })
        if (this.#tracked) this.#commits.holds(seq)
      },
      holdsCommit: (seq) => this.#tracked && this.#commits.has(seq),
      stored: (rows) => this.#compaction.stored(rows),
      catchUp: () => { ctx.onRefused?.(); return this.#commits.catchUp() },
      step1: () => this.#frames.step1(),
    }, ctx.commits)
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
    if (whole && stored.updates.length === 1 && stored.logRows === 0) this.#frames.wholeDocument(stored.updates[0]!)
    const backlog = this.#busBacklog ?? []
    this.#busBacklog = null
    for (const message of backlog) this.#onBusMessage(message)
    this.#compaction.stored(stored.logRows)
  }

  /**
   * Applies stored updates in one transaction (see `applyStored`): one that cannot be applied is skipped,
   * logged and counted. Returns the indexes of those skipped; null for a throw as the transaction finished.
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
    peer.send(this.#frames.step1())
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

  /**
   * Handles one message from a joined peer. Throws SyncError for input the peer must be closed for;
   * BAD_UPDATE leaves the room as it was.
   */
  receive (peer: Peer, message: ReceivedMessage): void {
    switch (message.type) {
      case 'sync-step1':
        peer.send(this.#frames.step2For(message.stateVector))
        return
      case 'sync-step2':
      case 'sync-update':
        if (this.#takeUpdates(peer, [message], null)) this.#writes.askForMissing(peer)
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

  /**
   * `receive` for a client without a connection (a long-poll send): its messages take effect together or
   * not at all (every update admitted, the awareness applied, before any update is queued). Resolves once
   * the updates are stored. Step 1 and query awareness are answered then, so that step 2 holds what they
   * brought; a step 1 also gets the room's step 1, the handshake's half a socket got on joining.
   */
  async receiveAll (peer: Peer, messages: readonly ReceivedMessage[]): Promise<void> {
    let incomplete = false
    await new Promise<void>((resolve, reject) => {
      let waiting = 1
      const done = (error?: Error): void => {
        if (error !== undefined) reject(error)
        else if (--waiting === 0) resolve()
      }
      const updates = messages.filter(isUpdate)
      waiting += updates.length
      incomplete = this.#takeUpdates(peer, updates, done, () => {
        for (const message of messages) if (message.type === 'awareness') this.receive(peer, message)
      })
      done()
    })
    if (incomplete) this.#writes.askForMissing(peer)
    for (const message of messages) {
      if (message.type !== 'sync-step1' && message.type !== 'query-awareness') continue
      this.receive(peer, message)
      if (message.type === 'sync-step1') peer.send(this.#frames.step1())
    }
  }

  /**
   * A read-only peer's edits are refused with permission denied, each on its own, and change nothing;
   * a writer's are admitted, all before any is queued (BAD_UPDATE changes nothing), `between` runs, and
   * they are queued. `done` hears of each update once stored (at once if it adds nothing or is refused).
   * Returns whether one depended on content the room lacks: the peer must be asked for it.
   */
  #takeUpdates (peer: Peer, updates: readonly ReceivedUpdate[], done: ((error?: Error) => void) | null, between?: () => void): boolean {
    if (!peer.canWrite) {
      for (const { update } of updates) if (!isEmptyUpdate(update)) peer.send(protocol.encodePermissionDenied('read-only access'))
      between?.()
      for (let i = 0; i < updates.length; i++) done?.()
      return false
    }
    const admitted = this.#writes.admit(updates)
    between?.()
    let incomplete = false
    admitted.forEach((admission, i) => {
      if (this.#writes.queue(admission, updates[i]!.update, peer, done)) return
      incomplete = true
      done?.()
    })
    return incomplete
  }

  /** A server-side change, stored before any client sees it: see `RoomWrites.transact`. */
  transact<T> (change: (doc: Y.Doc) => T): Promise<T> {
    return this.#writes.transact(change)
  }

  /** Stores an update, then applies and sends it: see `RoomWrites.submitAndWait`. */
  submitAndWait (update: Uint8Array): Promise<boolean> {
    return this.#writes.submitAndWait(update)
  }

  /** Resolves when every update submitted so far is committed (or failed). */
  flushed (): Promise<void> {
    return this.#writes.flushed()
  }

  /** Calls `listener` after every update or awareness change that reached local peers. */
  observe (listener: (event: RoomEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Every change of the document passes here. What was stored (committed here, or on another instance
   * and read from the bus or storage) goes to the peers; the write path publishes what it committed. A
   * server-side edit made on the document directly is stored first, and sent then (see RoomWrites.edited).
   */
  #onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    this.#frames.clear()
    if (origin === ORIGIN_COMMITTED || origin === ORIGIN_BUS) this.#sendUpdate(update)
    else this.#writes.edited(update)
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
    // A failed publish is told once per outage (RedisPublisher); other instances catch up from storage.
    bus.publish(this.name, message).catch(() => {})
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
    this.#writes.close()
    this.#commits.destroy()
    this.#listeners.clear()
    void this.#subscription?.close().catch(() => {})
    this.#awareness.destroy()
    this.doc.destroy()
  }
}
