import * as Y from 'yjs'
import { SyncError } from './errors.js'
import * as protocol from './protocol.js'

/** A client with an empty document: it needs the whole document, the same bytes for every such client. */
const isEmptyStateVector = (stateVector: Uint8Array): boolean => stateVector.length === 1 && stateVector[0] === 0

/**
 * A room's sync frames that depend only on its document's current state, encoded once per version and
 * shared by every peer that asks: step 1 for each join, and the whole document as step 2 for each fresh
 * client (a storm after a restart asks for it thousands of times). The room clears them on any change.
 */
export class SyncFrames {
  readonly #doc: Y.Doc
  #step1: Uint8Array | null = null
  #fullStep2: Uint8Array | null = null

  constructor (doc: Y.Doc) {
    this.#doc = doc
  }

  /** Sync step 1: the document's state vector. */
  step1 (): Uint8Array {
    return this.#step1 ??= protocol.encodeSyncStep1(Y.encodeStateVector(this.#doc))
  }

  /** The answer to sync step 1: step 2 with what `stateVector` lacks. Throws BAD_MESSAGE for an unreadable one. */
  step2For (stateVector: Uint8Array): Uint8Array {
    if (isEmptyStateVector(stateVector)) return this.#fullStep2 ??= protocol.encodeSyncStep2(Y.encodeStateAsUpdate(this.#doc))
    let update: Uint8Array
    try {
      update = Y.encodeStateAsUpdate(this.#doc, stateVector)
    } catch {
      throw new SyncError('BAD_MESSAGE', 'sync step 1 carries an unreadable state vector')
    }
    return protocol.encodeSyncStep2(update)
  }

  /** `whole` is the entire document as one update (a compacted room's snapshot): the step 2 a fresh client gets. */
  wholeDocument (whole: Uint8Array): void {
    this.#fullStep2 = protocol.encodeSyncStep2(whole)
  }

  /** The document changed. */
  clear (): void {
    this.#step1 = null
    this.#fullStep2 = null
  }
}
