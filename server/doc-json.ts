/**
 * A document as JSON, for the HTTP API and webhooks.
 *
 * A document loaded from updates does not know what kind its top-level types are: Yjs learns that only
 * when someone calls `getText`, `getMap`, ... So the kind is inferred from the content: map entries make
 * a Y.Map, string content a Y.Text, XML children a Y.XmlFragment, anything else a Y.Array. A type with
 * no live content is ambiguous and reads as an empty array.
 *
 * Inference defines the types for good (a name cannot change kind later), so it runs on a scratch copy,
 * never on a live room's document, where an embedder may still call `getText` on that name.
 */
import * as Y from 'yjs'

type Kind = 'map' | 'text' | 'xml' | 'array'

const kindOf = (type: Y.AbstractType<any>): Kind => {
  if (type instanceof Y.Map) return 'map'
  if (type instanceof Y.Text) return 'text'
  if (type instanceof Y.XmlFragment) return 'xml'
  if (type instanceof Y.Array) return 'array'
  if (type._map.size > 0) return 'map'
  for (let item = type._start; item !== null; item = item.right) {
    if (item.deleted) continue
    const content = item.content
    if (content instanceof Y.ContentString || content instanceof Y.ContentFormat || content instanceof Y.ContentEmbed) return 'text'
    if (content instanceof Y.ContentType && (content.type instanceof Y.XmlElement || content.type instanceof Y.XmlText || content.type instanceof Y.XmlHook)) return 'xml'
    return 'array'
  }
  return 'array'
}

const valueOf = (doc: Y.Doc, name: string, kind: Kind): unknown => {
  switch (kind) {
    case 'map': return doc.getMap(name).toJSON()
    case 'text': return doc.getText(name).toString()
    case 'xml': return doc.getXmlFragment(name).toString()
    case 'array': return doc.getArray(name).toJSON()
  }
}

/** Runs `read` on a throwaway copy of `doc` whose top-level types have their inferred kinds. */
const withTypedCopy = <T>(doc: Y.Doc, read: (copy: Y.Doc, kinds: Map<string, Kind>) => T): T => {
  const copy = new Y.Doc({ gc: true, guid: 'copy' })
  try {
    Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc))
    const kinds = new Map<string, Kind>()
    // Kinds the live document knows win over inference (an embedder may have called getText already).
    for (const [name, type] of doc.share) if (type.constructor !== Y.AbstractType) kinds.set(name, kindOf(type))
    for (const [name, type] of copy.share) if (!kinds.has(name)) kinds.set(name, kindOf(type))
    return read(copy, kinds)
  } finally {
    copy.destroy()
  }
}

/** Every top-level type of `doc` as JSON: text and XML as strings, maps as objects, arrays as arrays. */
export const docToJson = (doc: Y.Doc): Record<string, unknown> => withTypedCopy(doc, (copy, kinds) => {
  const result: Record<string, unknown> = {}
  for (const [name, kind] of kinds) result[name] = valueOf(copy, name, kind)
  return result
})

/**
 * The named top-level types as text: Y.Text and XML as their string, others as JSON. Names the document
 * does not have are left out.
 */
export const typesAsText = (doc: Y.Doc, names: readonly string[]): Record<string, string> => withTypedCopy(doc, (copy, kinds) => {
  const result: Record<string, string> = {}
  for (const name of names) {
    const kind = kinds.get(name)
    if (kind === undefined) continue
    const value = valueOf(copy, name, kind)
    result[name] = typeof value === 'string' ? value : JSON.stringify(value)
  }
  return result
})
