import * as Y from 'yjs'

/**
 * Durable storage for rooms: an append-only log of Yjs updates per room plus one compacted snapshot.
 *
 * Yjs updates are idempotent and commutative, so the log needs no locks: writers only append, and
 * compaction replaces exactly the rows it read by one merged snapshot, in one transaction. Rows
 * appended while a compaction runs are left alone and merged by the next one.
 */
export interface Storage {
  /** The room's snapshot (if any) followed by its log, in commit order. An unknown room gives `[]`. */
  load (room: string): Promise<StoredRoom>
  /**
   * Commits every entry in one transaction: all or nothing. When the promise resolves the updates survive
   * a crash of the process; only then may anyone else see them.
   */
  append (entries: readonly AppendEntry[]): Promise<void>
  /** Merges the snapshot and the log rows of `room` read now into a new snapshot and deletes those rows. */
  compact (room: string): Promise<void>
  /** Whether anything was ever stored for `room`. */
  has (room: string): Promise<boolean>
  /** Resolves when the storage answers; rejects when it cannot. Used by the readiness check. */
  check (): Promise<void>
  close (): Promise<void>
}

export interface AppendEntry {
  readonly room: string
  readonly update: Uint8Array
}

export interface StoredRoom {
  /** Snapshot first, then log rows in commit order. */
  readonly updates: Uint8Array[]
  /** How many of `updates` are log rows (not the snapshot): a hint for when to compact. */
  readonly logRows: number
}

/**
 * Merges updates into one, the way every storage compacts: through a document, so deleted content is
 * garbage-collected and the snapshot is as small as the document itself. Updates whose dependencies are
 * missing stay pending in the document and are kept in its encoding.
 */
export const mergeToSnapshot = (updates: readonly Uint8Array[]): Uint8Array => {
  const doc = new Y.Doc({ gc: true, guid: 'snapshot' })
  try {
    doc.transact(() => {
      for (const update of updates) Y.applyUpdate(doc, update)
    })
    return Y.encodeStateAsUpdate(doc)
  } finally {
    doc.destroy()
  }
}
