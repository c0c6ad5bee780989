import * as Y from 'yjs'
import { applyStored, collectDeepTypes } from '../apply-stored.js'

/**
 * Durable storage for rooms: an append-only log of Yjs updates per room plus one compacted snapshot.
 *
 * Yjs updates are idempotent and commutative, so the log needs no locks: writers only append, and
 * compaction replaces exactly the rows it read by one merged snapshot, in one transaction. Rows
 * appended while a compaction runs are left alone and merged by the next one.
 *
 * Each commit of a room gets the room's next sequence number (1, 2, ...). An instance that knows which
 * commits its copy of a room holds can tell that it missed one (a lost bus message) and read just the
 * commits after the last one it holds in order (`load(room, after)`).
 */
export interface Storage {
  /**
   * The room's snapshot (if any) followed by its log, in commit order, and the room's latest commit. An
   * unknown room gives `[]` and 0. With `after`, a catch-up read: commits up to `after` may be left out
   * (they are, unless a snapshot merged some commit past `after`; then everything is given).
   */
  load (room: string, after?: number): Promise<StoredRoom>
  /**
   * Commits the entries in one transaction: all or nothing. When the promise resolves the updates survive
   * a crash of the process; only then may anyone else see them. Resolves with each room's new commit
   * sequence number, or null for a room whose entries were refused and not stored, because a commit
   * after their `after` holds structs under ids their `claims` take (another instance admitted content
   * under the same ids; see `AppendEntry`). Storages that one instance owns never refuse.
   */
  append (entries: readonly AppendEntry[]): Promise<ReadonlyMap<string, number | null>>
  /** Merges the snapshot and the log rows of `room` read now into a new snapshot and deletes those rows. */
  compact (room: string): Promise<void>
  /** Whether anything was ever stored for `room`. */
  has (room: string): Promise<boolean>
  /**
   * The latest commit of each of `rooms` (0: none), in one query. Only storages that several instances
   * share have it: with it, rooms track which commits they hold and catch up on the ones they missed.
   */
  heads? (rooms: readonly string[]): Promise<ReadonlyMap<string, number>>
  /** Resolves when the storage answers; rejects when it cannot. Used by the readiness check. */
  check (): Promise<void>
  close (): Promise<void>
}

/** The ids an update's structs take for one client: clocks `from` (inclusive) to `to` (exclusive). */
export interface Claim {
  readonly client: number
  readonly from: number
  readonly to: number
}

export interface AppendEntry {
  readonly room: string
  readonly update: Uint8Array
  /**
   * The last commit of the room such that the writer's copy holds it and every commit before it; the
   * same for every entry of one room in one `append`. With it, the room's entries are refused when a
   * later commit claimed ids that their `claims` take. Without it, they are stored unchecked.
   */
  readonly after?: number
  /** The ids the update's structs take, recorded so that later commits are checked against them. */
  readonly claims?: readonly Claim[]
}

export interface StoredRoom {
  /** Snapshot first, then log rows in commit order. */
  readonly updates: Uint8Array[]
  /** How many of `updates` are log rows (not the snapshot): a hint for when to compact. */
  readonly logRows: number
  /** The room's latest commit when this was read: `updates` hold it and every commit before it. */
  readonly seq: number
}

/**
 * How many of a room's latest commits keep their claims: a writer further behind is refused (and catches
 * up). A client's claim that continues its previous one is merged with it, under the newer commit: that
 * keeps one entry per client that wrote lately, not one per commit. It is safe because a writer that
 * holds the older commit holds that part of the range and never claims it again.
 */
export const CLAIM_WINDOW = 256

/** Whether `claims` overlap a claim of a commit after `after` among `recent` (each tagged with its commit). */
export const claimsCollide = (recent: ReadonlyArray<Claim & { readonly seq: number }>, after: number, claims: readonly Claim[]): boolean =>
  recent.some((old) => old.seq > after && claims.some((c) => c.client === old.client && c.from < old.to && old.from < c.to))

/** Each client's claims of `entries` merged into one range per client. */
export const mergeClaims = (entries: readonly AppendEntry[]): Claim[] => {
  const byClient = new Map<number, { from: number, to: number }>()
  for (const entry of entries) {
    for (const { client, from, to } of entry.claims ?? []) {
      const known = byClient.get(client)
      if (known === undefined) byClient.set(client, { from, to })
      else byClient.set(client, { from: Math.min(known.from, from), to: Math.max(known.to, to) })
    }
  }
  return [...byClient].map(([client, { from, to }]) => ({ client, from, to }))
}

/** Entries grouped by room, in the order each room first appears. */
export const byRoom = (entries: readonly AppendEntry[]): Map<string, AppendEntry[]> => {
  const rooms = new Map<string, AppendEntry[]>()
  for (const entry of entries) {
    const list = rooms.get(entry.room)
    if (list === undefined) rooms.set(entry.room, [entry])
    else list.push(entry)
  }
  return rooms
}

/**
 * Merges updates into one, the way every storage compacts: through a document, so deleted content is
 * garbage-collected and the snapshot is as small as the document itself. Updates whose dependencies are
 * missing stay pending in the document and are kept in its encoding. `skipped` hears of updates that
 * could not be applied (see `applyStored`); they are not in the snapshot.
 */
export const mergeToSnapshot = (updates: readonly Uint8Array[], skipped: (index: number | null, error: unknown) => void = () => {}): Uint8Array => {
  const doc = new Y.Doc({ gc: true, guid: 'snapshot', gcFilter: collectDeepTypes })
  try {
    // An update that cannot be applied is left out of the snapshot: a room loads without it anyway.
    applyStored(doc, updates, null, skipped)
    return Y.encodeStateAsUpdate(doc)
  } finally {
    doc.destroy()
  }
}
