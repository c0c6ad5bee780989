import * as awarenessProtocol from 'y-protocols/awareness'
import type * as Y from 'yjs'
import { asRemovals, encodeAwarenessEntries, NULL_STATE, readAwarenessEntries, type AwarenessEntry } from './awareness-codec.js'
import { AwarenessCoalescing } from './awareness-coalescing.js'
import { AwarenessRevival } from './awareness-revival.js'
import { SyncError } from './errors.js'
import type { Peer } from './peer.js'
import { NUMBER_OPTIONS } from './options.js'
import * as protocol from './protocol.js'

/** Who changed a room's awareness, besides its peers (a peer is its own origin). */
const ORIGIN_CLOSE = 'close'
const ORIGIN_BUS = Symbol('bus')

/**
 * Awareness states one connection may announce, and one long-poll request may bring: a page announces one,
 * its own. Each state a room holds costs memory until it goes, and every change is sent to every peer.
 */
export const MAX_AWARENESS_STATES_PER_CLIENT = 8
/**
 * Awareness states a room admits from its clients by default. A page announces one; each state costs
 * memory, goes to every joiner, and each change goes to every peer.
 */
export const DEFAULT_MAX_AWARENESS_STATES_PER_ROOM: number = NUMBER_OPTIONS.maxAwarenessStatesPerRoom.default
/** Longest awareness state (its JSON): a name, a colour and a cursor take a few hundred bytes. */
export const MAX_AWARENESS_STATE_BYTES = 64 * 1024

/** Where a room's awareness changes go. */
export interface AwarenessSink {
  /** To every peer of the room, as one awareness frame. */
  broadcast (frame: Uint8Array): void
  /** To other instances: changes made here, never what came from them. */
  publish (update: Uint8Array): void
}

/**
 * A room's awareness (cursors, names, who is here) and which peer announced which state. A peer's states
 * go when its connection closes, on every instance, rather than after y-protocols' 30 s timeout; states
 * from clients without a connection (long-polling) and from other instances time out.
 */
export class RoomAwareness {
  readonly awareness: awarenessProtocol.Awareness
  /** The awareness client ids each joined peer announced. */
  readonly #owned = new Map<Peer, Set<number>>()
  /** Raises the clocks of states that clients announce again (see awareness-revival.ts). */
  readonly #revival: AwarenessRevival
  /** The states whose clocks the room raised in the message being applied. */
  #raised: ReadonlySet<number> | null = null
  /** Merges changes into one frame per interval (see awareness-coalescing.ts). */
  readonly #coalescing: AwarenessCoalescing
  /** The sender of the message being applied. */
  #sender: Peer | null = null

  readonly #maxStates: number

  /** `intervalMs`: at most one awareness frame (and one bus message) per interval. */
  constructor (doc: Y.Doc, sink: AwarenessSink, maxStates = DEFAULT_MAX_AWARENESS_STATES_PER_ROOM, intervalMs?: number) {
    this.#maxStates = maxStates
    this.awareness = new awarenessProtocol.Awareness(doc)
    this.awareness.setLocalState(null)
    this.awareness.on('update', this.#onUpdate)
    this.#revival = new AwarenessRevival(this.awareness)
    this.#coalescing = new AwarenessCoalescing(this.awareness, {
      broadcast: (update) => sink.broadcast(protocol.encodeAwareness(update)),
      publish: (update) => sink.publish(update),
    }, intervalMs)
  }

  /** Records a peer that joined now, and sends it every known state. */
  joined (peer: Peer): void {
    this.#owned.set(peer, new Set())
    this.#revival.joined(peer)
    this.sendAll(peer)
  }

  /** Removes the states `peer` announced, telling everyone else. */
  left (peer: Peer): void {
    const ids = this.#owned.get(peer)
    if (ids === undefined) return
    this.#owned.delete(peer)
    if (ids.size > 0) awarenessProtocol.removeAwarenessStates(this.awareness, [...ids], ORIGIN_CLOSE)
  }

  /** Sends `peer` every known state, if there are any (on joining, and when it asks). */
  sendAll (peer: Peer): void {
    if (this.awareness.states.size === 0) return
    peer.send(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...this.awareness.states.keys()])))
  }

  /**
   * Applies an awareness update from `peer`, a joined one or a client without a connection (a long-poll
   * request). It reaches local peers and other instances; the sender hears of it too (see #onUpdate).
   * States of a joined peer go when it leaves; those of a client without a connection time out (30 s
   * without renewal) on every instance. Throws BAD_MESSAGE if it cannot be decoded or breaks a limit.
   */
  receive (peer: Peer, update: Uint8Array): void {
    const owned = this.#owned.get(peer)
    // A client without a connection (the project's poll channel) never echoes others' states.
    this.#receive(update, owned === undefined ? null : peer, peer, owned)
  }

  /** Applies an awareness update another instance published. Throws if it cannot be applied. */
  receiveFromBus (update: Uint8Array): void {
    awarenessProtocol.applyAwarenessUpdate(this.awareness, update, ORIGIN_BUS)
  }

  /** The joined peer that announced awareness client `client`, if any. */
  ownerOf (client: number): Peer | undefined {
    for (const [peer, ids] of this.#owned) if (ids.has(client)) return peer
    return undefined
  }

  destroy (): void {
    // What waits is sent first: the removals of the last peers' states must still reach other instances.
    this.#coalescing.flush()
    this.#coalescing.destroy()
    this.#owned.clear()
    this.awareness.destroy()
  }

  /** Reads, raises (see awareness-revival.ts), checks and applies. */
  #receive (update: Uint8Array, from: Peer | null, sender: Peer, owned: ReadonlySet<number> | undefined): void {
    let entries: AwarenessEntry[]
    try {
      entries = readAwarenessEntries(update)
    } catch (error) {
      throw new SyncError('BAD_MESSAGE', (error as Error).message)
    }
    const raised = new Set<number>()
    const revived = this.#revival.revive(entries, from, (client) => raised.add(client))
    this.#check(revived ?? entries, owned)
    this.#raised = raised
    this.#sender = sender
    try {
      this.#apply(revived === null ? update : encodeAwarenessEntries(revived), sender)
    } finally {
      this.#raised = null
      this.#sender = null
    }
  }

  /**
   * Throws BAD_MESSAGE for an update with a state over MAX_AWARENESS_STATE_BYTES, or one that would give
   * its sender (holding `owned`) more than MAX_AWARENESS_STATES_PER_CLIENT states, and OVERLOADED for one
   * that would take the room past its limit of states; nothing of it applies.
   * A state is added when y-protocols would add it: not held now, and newer than any clock seen for it.
   */
  #check (entries: readonly AwarenessEntry[], owned: ReadonlySet<number> | undefined): void {
    const { states, meta } = this.awareness
    const adding = new Set<number>()
    for (const [client, clock, state] of entries) {
      if (Buffer.byteLength(state) > MAX_AWARENESS_STATE_BYTES) {
        throw new SyncError('BAD_MESSAGE', `an awareness state is longer than ${MAX_AWARENESS_STATE_BYTES} bytes`)
      }
      if (state !== NULL_STATE && !states.has(client) && !(owned?.has(client) ?? false) && (meta.get(client)?.clock ?? -1) < clock) adding.add(client)
    }
    if ((owned?.size ?? 0) + adding.size > MAX_AWARENESS_STATES_PER_CLIENT) {
      throw new SyncError('BAD_MESSAGE', `an awareness update may not bring one client more than ${MAX_AWARENESS_STATES_PER_CLIENT} states`)
    }
    // Transient: states time out or go with their connections, and the room has room again.
    if (adding.size > 0 && states.size + adding.size > this.#maxStates) {
      throw new SyncError('OVERLOADED', `the room holds ${states.size} awareness states, its limit is ${this.#maxStates}`)
    }
  }

  #apply (update: Uint8Array, origin: unknown): void {
    try {
      awarenessProtocol.applyAwarenessUpdate(this.awareness, update, origin)
    } catch {
      throw new SyncError('BAD_MESSAGE', 'awareness update cannot be decoded')
    }
  }

  #onUpdate = (
    { added, updated, removed }: { added: number[], updated: number[], removed: number[] },
    origin: unknown,
  ): void => {
    const ids = origin !== null && typeof origin === 'object' ? this.#owned.get(origin as Peer) : undefined
    if (ids !== undefined) {
      // A state the room removed earlier and a reconnected client announces again counts as updated,
      // not added: it is this peer's all the same, to remove when its socket closes.
      for (const id of added) ids.add(id)
      for (const id of updated) ids.add(id)
      for (const id of removed) ids.delete(id)
    }
    this.#revival.changed(updated, removed)
    const changed = added.concat(updated, removed)
    const sender = this.#sender
    // Other instances time states out themselves, and never re-publish what came from the bus.
    const local = ids !== undefined || origin === ORIGIN_CLOSE || sender !== null
    const raised = this.#raised ?? new Set<number>()
    if (sender === null || (ids !== undefined && raised.size === 0)) {
      this.#coalescing.changed(changed, local)
      return
    }
    // The sender of a state whose clock the room raised hears of it as a removal at that clock. Sent the
    // state itself, a client takes the room's copy for news and overwrites any change it made since it
    // sent it; told its state was removed, y-protocols keeps the client's own state, moves its clock past
    // the room's, and the client announces what it has now.
    // That frame is the sender's alone and goes at once; everyone else hears of the raised state in the
    // next merged frame, like any change: a room of hundreds coming back after a restart would otherwise
    // send each client a frame of its own per returning client. The merged frame reaches the sender too,
    // after the removal, at a clock the client has moved past: it changes nothing there. (A client
    // without a connection is no peer: it hears of its change only in the answer to its request.)
    this.#coalescing.changed(changed, local)
    sender.send(protocol.encodeAwareness(asRemovals(awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed), raised)))
  }
}
