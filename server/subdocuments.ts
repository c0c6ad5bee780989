/**
 * Subdocuments in updates, counted before Yjs reads them. Each reference to a subdocument is about 17
 * bytes on the wire, and Yjs makes a whole Y.Doc for it as soon as it decodes the update, before anything
 * is applied: 5-7 KB apiece. 100,000 references (1.6 MB) took a server 520-740 MB and a 4 s stall in the
 * decode alone. So the references are counted on the bytes, without decoding, and an update or a room with
 * more than MAX_SUBDOCUMENTS of them is refused.
 *
 * The relay syncs one document per room; a client that uses subdocuments syncs each in a room of its own,
 * and the parent document holds only the references: a few per document is plenty.
 */
import * as decoding from 'lib0/decoding'

/** Subdocument references a room may hold (live, stored or waiting for a commit); more is BAD_UPDATE. */
export const MAX_SUBDOCUMENTS = 64

/** Content kinds of an update's items (Yjs's content refs), as far as the scan below needs them. */
const GC = 0
const DELETED = 1
const JSON_CONTENT = 2
const BINARY = 3
const STRING = 4
const EMBED = 5
const FORMAT = 6
const TYPE = 7
const ANY = 8
const DOC = 9
const SKIP = 10
/** Type refs of Y.XmlElement and Y.XmlHook, which carry a name. */
const XML_ELEMENT = 3
const XML_HOOK = 5

/**
 * How many subdocument references the structs of `update` (Yjs update format v1) hold, or -1 if the bytes
 * are not an update (decoding it will say why). Reads the bytes once and makes no object per struct.
 */
export const countSubdocuments = (update: Uint8Array): number => {
  const decoder = decoding.createDecoder(update)
  let count = 0
  try {
    for (let clients = decoding.readVarUint(decoder); clients > 0; clients--) {
      let structs = decoding.readVarUint(decoder)
      decoding.readVarUint(decoder) // client
      decoding.readVarUint(decoder) // clock
      for (; structs > 0; structs--) {
        const info = decoding.readUint8(decoder)
        const ref = info & 0b11111
        if (ref === GC || ref === SKIP) {
          decoding.readVarUint(decoder)
          continue
        }
        const hasOrigin = (info & 0b10000000) !== 0
        const hasRightOrigin = (info & 0b01000000) !== 0
        if (hasOrigin) readId(decoder)
        if (hasRightOrigin) readId(decoder)
        if (!hasOrigin && !hasRightOrigin) {
          if (decoding.readVarUint(decoder) === 1) decoding.readVarString(decoder)
          else readId(decoder)
          if ((info & 0b00100000) !== 0) decoding.readVarString(decoder)
        }
        switch (ref) {
          case DELETED: decoding.readVarUint(decoder); break
          case JSON_CONTENT: for (let n = decoding.readVarUint(decoder); n > 0; n--) decoding.readVarString(decoder); break
          case BINARY: decoding.readVarUint8Array(decoder); break
          case STRING: case EMBED: decoding.readVarString(decoder); break
          case FORMAT: decoding.readVarString(decoder); decoding.readVarString(decoder); break
          case TYPE: {
            const type = decoding.readVarUint(decoder)
            if (type === XML_ELEMENT || type === XML_HOOK) decoding.readVarString(decoder)
            break
          }
          case ANY: for (let n = decoding.readVarUint(decoder); n > 0; n--) decoding.readAny(decoder); break
          case DOC: decoding.readVarString(decoder); decoding.readAny(decoder); count++; break
          default: return -1
        }
      }
    }
  } catch {
    return -1
  }
  return count
}

const readId = (decoder: decoding.Decoder): void => {
  decoding.readVarUint(decoder)
  decoding.readVarUint(decoder)
}
