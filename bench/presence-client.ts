/**
 * A raw client that moves a cursor and behaves, on awareness, like the stock provider of its server:
 * the y-websocket provider sends back every awareness change it receives (one message per frame that
 * changed anything); Hocuspocus's provider sends only its own changes. No Y.Doc and no Awareness: ids and
 * clocks are read from the bytes (through the server's awareness codec, which decodes no state), echoes
 * are the entries' bytes as received, and the states' JSON is parsed only by latency probes, so that a few load-generator processes can hold hundreds of clients
 * without becoming the bottleneck.
 *
 * A cursor state carries the time it was set (`t`, ms on the shared clock): a probe receiving a newer
 * state of another client records the time it took to arrive.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'
import { AwarenessEntryCursor, encodeAwarenessEntries, type AwarenessEntry } from '../server/awareness-codec.js'
import { now } from './clock.js'
import { makeCodec, type Dialect } from './wire.js'

const MESSAGE_AWARENESS = 1

export interface PresenceClientOptions {
  readonly url: string
  readonly dialect: Dialect
  readonly room: string
  readonly probe: boolean
}

export class PresenceClient {
  readonly id = Math.floor(Math.random() * 0xffffffff)
  readonly opened: Promise<void>
  /** Awareness frames received, and frames sent (own moves and echoes). */
  framesIn = 0
  framesOut = 0
  /** Arrival delays of other clients' cursor moves (probes only), ms. */
  latencies: number[] = []
  closeCode: number | null = null
  readonly #options: PresenceClientOptions
  readonly #ws: WebSocket
  readonly #prefix: string | null
  readonly #held = new Map<number, number>()
  #clock = 0
  #closing = false

  constructor (options: PresenceClientOptions) {
    this.#options = options
    const codec = makeCodec(options.dialect, options.room)
    this.#prefix = options.dialect === 'hocuspocus' ? options.room : null
    this.#ws = new WebSocket(`${options.url}/${options.dialect === 'hocuspocus' ? '' : options.room}`, { perMessageDeflate: false })
    this.#ws.binaryType = 'nodebuffer'
    this.opened = new Promise((resolve, reject) => {
      this.#ws.once('open', () => {
        for (const frame of codec.hello(new Uint8Array([0]))) this.#ws.send(frame)
        resolve()
      })
      this.#ws.once('error', reject)
    })
    this.opened.catch(() => {})
    this.#ws.on('error', () => {})
    this.#ws.on('close', (code) => { if (!this.#closing) this.closeCode = code })
    this.#ws.on('message', (data: Buffer) => this.#receive(data, codec))
  }

  /** Sets a new cursor position, as `awareness.setLocalStateField('cursor', ...)` would. */
  move (): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return
    this.#clock++
    const state = JSON.stringify({ user: { name: `u${this.id}` }, cursor: { anchor: this.#clock, head: this.#clock }, t: now() })
    this.#held.set(this.id, this.#clock)
    this.#send([[this.id, this.#clock, state]])
  }

  close (): Promise<void> {
    this.#closing = true
    if (this.#ws.readyState === WebSocket.CLOSED) return Promise.resolve()
    return new Promise((resolve) => {
      this.#ws.once('close', () => resolve())
      this.#ws.close()
      setTimeout(() => { this.#ws.terminate(); resolve() }, 2000).unref()
    })
  }

  #send (entries: readonly AwarenessEntry[]): void {
    this.#sendUpdate(encodeAwarenessEntries(entries))
  }

  #receive (data: Buffer, codec: ReturnType<typeof makeCodec>): void {
    const decoder = decoding.createDecoder(data)
    if (this.#prefix !== null) decoding.readVarString(decoder)
    const type = decoding.readVarUint(decoder)
    if (type !== MESSAGE_AWARENESS) {
      // The handshake: answer the server's step 1 with an empty step 2, as a client with no edits does.
      if (codec.decode(data).kind === 'step1') this.#ws.send(codec.step2(new Uint8Array([0, 0])))
      return
    }
    this.framesIn++
    const at = now()
    const entries = new AwarenessEntryCursor(decoding.createDecoder(decoding.readVarUint8Array(decoder)))
    // The changed entries' bytes, sent back as they came: what the stock provider's echo holds, without
    // the cost of decoding and encoding every state in the load generator.
    const changed: Uint8Array[] = []
    while (entries.next()) {
      const { client, clock } = entries
      if ((this.#held.get(client) ?? -1) >= clock) continue
      this.#held.set(client, clock)
      changed.push(entries.bytes.subarray(entries.entryStart, entries.end))
      if (this.#options.probe && client !== this.id && !entries.removal) {
        const sent = (JSON.parse(entries.state()) as { t?: number }).t
        if (typeof sent === 'number') this.latencies.push(at - sent)
      }
    }
    if (changed.length > 0 && this.#options.dialect === 'y-websocket') this.#sendRaw(changed)
  }

  /** An awareness frame of entries already encoded. */
  #sendRaw (entries: readonly Uint8Array[]): void {
    const update = encoding.createEncoder()
    encoding.writeVarUint(update, entries.length)
    for (const entry of entries) encoding.writeUint8Array(update, entry)
    this.#sendUpdate(encoding.toUint8Array(update))
  }

  #sendUpdate (update: Uint8Array): void {
    const frame = encoding.createEncoder()
    if (this.#prefix !== null) encoding.writeVarString(frame, this.#prefix)
    encoding.writeVarUint(frame, MESSAGE_AWARENESS)
    encoding.writeVarUint8Array(frame, update)
    this.framesOut++
    this.#ws.send(encoding.toUint8Array(frame))
  }
}
