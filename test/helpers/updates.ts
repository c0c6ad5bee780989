import * as Y from 'yjs'

/**
 * Two text updates, the second depending on the first: client 1 types `first`; client 2, holding it,
 * types `second` after it. A room that lacks `first` cannot place `second` alone; `both` is what a
 * client holding them sends when asked for everything.
 */
export const dependentUpdates = (first = 'a', second = 'b'): { first: Uint8Array, second: Uint8Array, both: Uint8Array } => {
  const one = new Y.Doc()
  one.clientID = 1
  one.getText('text').insert(0, first)
  const two = new Y.Doc()
  Y.applyUpdate(two, Y.encodeStateAsUpdate(one))
  // Set after receiving client 1's content: Yjs picks a new id for a document that receives its own.
  two.clientID = 2
  two.getText('text').insert(first.length, second)
  return {
    first: Y.encodeStateAsUpdate(one),
    second: Y.encodeStateAsUpdate(two, Y.encodeStateVector(one)),
    both: Y.encodeStateAsUpdate(two),
  }
}
