import * as encoding from 'lib0/encoding'
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

/**
 * An update of one string item by `client`, placed between `origin` and `right`, encoded by hand as only
 * a forger would: real clients take the right origin from the document, right of the origin.
 */
export const forgedItem = (client: number, origin: Y.ID, right: Y.ID, text: string): Uint8Array => {
  const encoder = encoding.createEncoder()
  for (const n of [1, 1, client, 0]) encoding.writeVarUint(encoder, n)
  encoding.writeUint8(encoder, 0x84 | 0x40) // string content, with an origin and a right origin
  for (const n of [origin.client, origin.clock, right.client, right.clock]) encoding.writeVarUint(encoder, n)
  encoding.writeVarString(encoder, text)
  encoding.writeVarUint(encoder, 0)
  return encoding.toUint8Array(encoder)
}

/**
 * Y.Maps nested `depth` deep under the root map `root`, key `k` at every level, as updates of client
 * `client`: one update per level from `from` (a write client nesting one level per message), and
 * `whole`, all of them in one. `deleteRoot` is the 10-byte update that deletes the outermost entry, which
 * makes Yjs delete and collect every level recursively.
 */
export const nestedMaps = (depth: number, client = 7): { levels: Uint8Array[], whole: Uint8Array, deleteRoot: Uint8Array } => {
  const doc = new Y.Doc()
  doc.clientID = client
  const levels: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => levels.push(update))
  let map: Y.Map<unknown> = doc.getMap('root')
  for (let level = 0; level < depth; level++) {
    const inner = new Y.Map<unknown>()
    map.set('k', inner)
    map = inner
  }
  const encoder = encoding.createEncoder()
  // No structs; a delete set of client `client`: one range, clock 0, length 1 (the outermost entry).
  for (const n of [0, 1, client, 1, 0, 1]) encoding.writeVarUint(encoder, n)
  return { levels, whole: Y.encodeStateAsUpdate(doc), deleteRoot: encoding.toUint8Array(encoder) }
}

/**
 * `count` subdocument references in root array `a`, each placed after the one before, by client `client`
 * (from clock `clock`): about 17 bytes apiece. Encoded by hand, as an attacker would, so that making them
 * costs the test no Y.Doc per reference.
 */
export const subdocumentReferences = (count: number, client = 11, clock = 0): Uint8Array => {
  const encoder = encoding.createEncoder()
  for (const n of [1, count, client, clock]) encoding.writeVarUint(encoder, n)
  for (let i = 0; i < count; i++) {
    const first = i === 0 && clock === 0
    encoding.writeUint8(encoder, 9 | (first ? 0 : 0x80)) // a subdocument, with an origin unless first
    if (first) {
      encoding.writeVarUint(encoder, 1)
      encoding.writeVarString(encoder, 'a')
    } else {
      encoding.writeVarUint(encoder, client)
      encoding.writeVarUint(encoder, clock + i - 1)
    }
    encoding.writeVarString(encoder, `d${i}`)
    encoding.writeAny(encoder, {})
  }
  encoding.writeVarUint(encoder, 0)
  return encoding.toUint8Array(encoder)
}
