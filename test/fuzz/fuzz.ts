/**
 * A seeded protocol fuzzer: it records real y-websocket messages (sync steps, updates of every shared
 * type, awareness, queries, auth, types nested past the nesting limit and their deletes, subdocuments
 * within and past the room's limit), mutates them (bit flips, interesting bytes, truncation, insertion,
 * deletion, duplication, splices of two messages, huge varints, swapped types) and sends them over
 * several raw sockets to one room. A socket the server closes is replaced by a new one. The same seed
 * gives the same frames, so a failure can be replayed.
 */
import * as encoding from 'lib0/encoding'
import * as prng from 'lib0/prng'
import * as awarenessProtocol from 'y-protocols/awareness'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as protocol from '../../server/protocol.js'
import { MAX_NESTING_DEPTH } from '../../server/nesting.js'
import { MAX_SUBDOCUMENTS } from '../../server/subdocuments.js'
import { nestedMaps, subdocumentReferences } from '../helpers/updates.js'

type Rng = prng.PRNG

/** Real frames, as the stock client and server send them, from a document with its own client ids. */
export const buildCorpus = (seed: number): Uint8Array[] => {
  const rng = prng.create(seed)
  const frames: Uint8Array[] = []
  const doc = new Y.Doc()
  const peer = new Y.Doc()
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => {
    updates.push(update)
    frames.push(protocol.encodeSyncUpdate(update))
  })
  const text = doc.getText('text')
  const map = doc.getMap('meta')
  const array = doc.getArray('list')
  const xml = doc.getXmlFragment('xml')
  for (let i = 0; i < 60; i++) {
    switch (prng.int32(rng, 0, 6)) {
      case 0: text.insert(prng.int32(rng, 0, text.length), prng.utf16String(rng, 12)); break
      case 1: if (text.length > 2) text.delete(prng.int32(rng, 0, text.length - 2), 1); break
      case 2: text.format(0, Math.min(3, text.length), { bold: true }); break
      case 3: map.set(prng.word(rng, 1, 6), prng.oneOf(rng, [1, 'two', null, true, { nested: [1, 2] }, new Uint8Array([1, 2, 3])])); break
      case 4: array.push([prng.int32(rng, 0, 1000), prng.word(rng)]); break
      case 5: if (array.length > 0) array.delete(0, 1); break
      case 6: xml.push([new Y.XmlElement('p')]); break
    }
  }
  Y.applyUpdate(peer, Y.encodeStateAsUpdate(doc))
  frames.push(protocol.encodeSyncStep1(Y.encodeStateVector(doc)))
  frames.push(protocol.encodeSyncStep1(Y.encodeStateVector(new Y.Doc())))
  frames.push(protocol.encodeSyncStep2(Y.encodeStateAsUpdate(doc)))
  frames.push(protocol.encodeSyncStep2(Y.mergeUpdates(updates.slice(0, 10))))
  frames.push(protocol.encodeSyncStep2(Y.encodeStateAsUpdateV2(doc)))
  const awareness = new awarenessProtocol.Awareness(doc)
  awareness.setLocalState({ user: { name: 'fuzz', color: '#f00' }, cursor: { anchor: 3, head: 5 } })
  frames.push(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID])))
  awareness.setLocalState(null)
  frames.push(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID])))
  awareness.destroy()
  frames.push(protocol.encodeQueryAwareness())
  frames.push(protocol.encodePermissionDenied('denied'))
  frames.push(...hostileFrames(rng))
  doc.destroy()
  peer.destroy()
  return frames
}

/**
 * Frames of the kinds issue 24 found costly: maps nested past the nesting limit (whole, and one level per
 * update), the delete of a nest's root, XML elements nested deep, and subdocuments, a few and a flood.
 * Their own client ids; root types the scenario's clients do not compare, so what the server admits of
 * them and of their mutations only has to agree between clients.
 */
const hostileFrames = (rng: Rng): Uint8Array[] => {
  const frames: Uint8Array[] = []
  const client = prng.int32(rng, 1000, 2 ** 30)
  const deep = nestedMaps(MAX_NESTING_DEPTH + 40, client)
  frames.push(protocol.encodeSyncUpdate(deep.whole), protocol.encodeSyncStep2(deep.whole), protocol.encodeSyncUpdate(deep.deleteRoot))
  const shallow = nestedMaps(12, client + 1)
  frames.push(...shallow.levels.map((level) => protocol.encodeSyncUpdate(level)), protocol.encodeSyncUpdate(shallow.deleteRoot))
  const xmlDoc = new Y.Doc()
  xmlDoc.clientID = client + 2
  let element: Y.XmlFragment = xmlDoc.getXmlFragment('deep-xml')
  for (let i = 0; i < MAX_NESTING_DEPTH + 5; i++) {
    const inner = new Y.XmlElement('blockquote')
    element.insert(0, [inner])
    element = inner
  }
  frames.push(protocol.encodeSyncUpdate(Y.encodeStateAsUpdate(xmlDoc)))
  xmlDoc.destroy()
  const subdocs = new Y.Doc()
  subdocs.clientID = client + 3
  subdocs.on('update', (update: Uint8Array) => frames.push(protocol.encodeSyncUpdate(update)))
  for (let i = 0; i < 3; i++) subdocs.getArray<Y.Doc>('subdocs').push([new Y.Doc({ guid: `fuzz-${i}` })])
  subdocs.destroy()
  frames.push(protocol.encodeSyncUpdate(subdocumentReferences(MAX_SUBDOCUMENTS + 10, client + 4)))
  frames.push(protocol.encodeSyncUpdate(subdocumentReferences(20_000, client + 5)))
  return frames
}

const INTERESTING = [0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0xff, 0xfe, 0x40]

const hugeVarint = (rng: Rng): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, prng.oneOf(rng, [0x7fffffff, 0xffffffff, Number.MAX_SAFE_INTEGER, 2 ** 40, 1e6]))
  return encoding.toUint8Array(encoder)
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/** One mutation of `frame`; `corpus` feeds splices. Never returns the input array itself. */
const mutateOnce = (rng: Rng, frame: Uint8Array, corpus: readonly Uint8Array[]): Uint8Array => {
  const at = (n: number): number => prng.int32(rng, 0, Math.max(0, n))
  const out = frame.slice()
  switch (prng.int32(rng, 0, 9)) {
    case 0: { // flip bits
      for (let i = prng.int32(rng, 1, 4); i > 0 && out.length > 0; i--) out[at(out.length - 1)]! ^= 1 << prng.int32(rng, 0, 7)
      return out
    }
    case 1: { // interesting bytes
      if (out.length > 0) out[at(out.length - 1)] = prng.oneOf(rng, INTERESTING)
      return out
    }
    case 2: return out.subarray(0, at(out.length)) // truncate
    case 3: { // insert random bytes
      const i = at(out.length)
      return concat(out.subarray(0, i), prng.uint8Array(rng, prng.int32(rng, 1, 16)), out.subarray(i))
    }
    case 4: { // delete a range
      const i = at(out.length)
      return concat(out.subarray(0, i), out.subarray(Math.min(out.length, i + prng.int32(rng, 1, 16))))
    }
    case 5: { // duplicate a range
      const i = at(out.length)
      const j = Math.min(out.length, i + prng.int32(rng, 1, 32))
      return concat(out.subarray(0, j), out.subarray(i, j), out.subarray(j))
    }
    case 6: { // splice: the head of this message, the tail of another
      const other = prng.oneOf(rng, corpus as Uint8Array[])
      return concat(out.subarray(0, at(out.length)), other.subarray(at(other.length)))
    }
    case 7: { // a huge varint where a type or a length is read
      const i = prng.int32(rng, 0, Math.min(3, out.length))
      return concat(out.subarray(0, i), hugeVarint(rng), out.subarray(i + 1))
    }
    case 8: { // another message type or sync subtype
      if (out.length > 0) out[prng.int32(rng, 0, Math.min(1, out.length - 1))] = prng.int32(rng, 0, 5)
      return out
    }
    default: { // random bytes after a valid header
      return concat(out.subarray(0, Math.min(2, out.length)), prng.uint8Array(rng, prng.int32(rng, 0, 64)))
    }
  }
}

/** A frame for the fuzzer: about one in eight is sent as recorded, the rest carry 1-3 mutations. */
export const nextFrame = (rng: Rng, corpus: readonly Uint8Array[]): Uint8Array => {
  let frame = prng.oneOf(rng, corpus as Uint8Array[])
  if (prng.int32(rng, 0, 7) === 0) return frame
  for (let i = prng.int32(rng, 1, 3); i > 0; i--) frame = mutateOnce(rng, frame, corpus)
  return frame
}

export interface FuzzOptions {
  /** `ws://host:port` */
  readonly url: string
  readonly room: string
  readonly seed: number
  /** Stop after this many frames... */
  readonly frames: number
  /** ...or after this long, whichever comes first. */
  readonly durationMs?: number
  /** Sockets sending at once. */
  readonly connections: number
  /** Frames sent back to back before waiting for the server's answer to a probe. */
  readonly burst?: number
  /** Called about every 1000 frames. */
  readonly progress?: (sent: number) => void
}

export interface FuzzReport {
  readonly sent: number
  readonly sockets: number
  /** How the server closed the sockets it closed, by close code. */
  readonly closes: Record<number, number>
  readonly ms: number
}

/** Opens a socket, or null if the server refused it. */
const open = (url: string): Promise<WebSocket | null> => new Promise((resolve) => {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  ws.on('error', () => {})
  ws.once('open', () => resolve(ws))
  ws.once('close', () => resolve(null))
  ws.once('unexpected-response', () => { ws.terminate(); resolve(null) })
})

/**
 * Sends frames until `frames` are sent or the time is up. Each socket sends a burst, then a query
 * awareness probe, and waits until the server answered it (so the burst was processed) or closed.
 */
export const runFuzz = async (options: FuzzOptions): Promise<FuzzReport> => {
  const rng = prng.create(options.seed)
  const corpus = buildCorpus(options.seed)
  const probe = protocol.encodeQueryAwareness()
  const burst = options.burst ?? 8
  const deadline = options.durationMs === undefined ? Infinity : Date.now() + options.durationMs
  const started = Date.now()
  const closes: Record<number, number> = {}
  let sent = 0
  let sockets = 0
  let reported = 0
  const more = (): boolean => sent < options.frames && Date.now() < deadline

  const worker = async (): Promise<void> => {
    while (more()) {
      const ws = await open(`${options.url}/${options.room}`)
      if (ws === null) continue
      sockets++
      let closed: number | null = null
      let answers = 0
      let wake: (() => void) | null = null
      ws.on('message', (data: Buffer) => {
        if (data[0] !== protocol.MESSAGE_AWARENESS) return
        answers++
        wake?.()
      })
      const onClose = new Promise<void>((resolve) => ws.once('close', (code) => {
        closed = code
        closes[code] = (closes[code] ?? 0) + 1
        resolve()
      }))
      while (closed === null && more()) {
        const before = answers
        for (let i = 0; i < burst && more(); i++) {
          ws.send(nextFrame(rng, corpus))
          sent++
        }
        ws.send(probe)
        // Awareness replies come for probes and for other sockets' awareness: either means progress.
        await Promise.race([onClose, new Promise<void>((resolve) => {
          if (answers > before) resolve()
          else wake = resolve
        })])
        wake = null
        if (options.progress !== undefined && sent - reported >= 1000) {
          reported = sent
          options.progress(sent)
        }
      }
      if (closed === null) {
        ws.close()
        await onClose
      }
    }
  }
  await Promise.all(Array.from({ length: options.connections }, () => worker()))
  return { sent, sockets, closes, ms: Date.now() - started }
}
