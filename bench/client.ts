/**
 * A raw benchmark client: one socket, no Y.Doc on the receive path. It keeps the sync payloads it
 * receives and, when tracking, how far it holds each Yjs client's clock (from `Y.parseUpdateMeta`) and
 * when each clock arrived, which is what latency is computed from. Convergence is decided on the payloads
 * themselves: merged, their state vector must cover the expected one.
 */
import WebSocket from 'ws'
import * as Y from 'yjs'
import { now } from './clock.js'
import { makeCodec, type Codec, type Dialect } from './wire.js'

const EMPTY_UPDATE = new Uint8Array([0, 0])

export type StateVector = ReadonlyMap<number, number>

export interface ClientOptions {
  readonly url: string
  readonly dialect: Dialect
  readonly room: string
  /** Parse every payload on arrival (coverage and arrival times); otherwise only keep payloads. */
  readonly track: boolean
  /** Also record when each clock arrived (latency probes only: it costs a number per character). */
  readonly latency?: boolean
}

export const covers = (have: StateVector, want: StateVector): boolean => {
  for (const [client, clock] of want) if ((have.get(client) ?? 0) < clock) return false
  return true
}

export class BenchClient {
  readonly options: ClientOptions
  readonly codec: Codec
  readonly ws: WebSocket
  readonly opened: Promise<void>
  /** Resolves when the server answered our step 1. */
  readonly handshake: Promise<void>
  payloads: Uint8Array[] = []
  firstStep2: Uint8Array | null = null
  lastSyncAt = 0
  /** Contiguous clock held per Yjs client, and when each clock first arrived (tracking clients only). */
  readonly cover = new Map<number, number>()
  readonly arrivals = new Map<number, number[]>()
  /** Clocks that arrived again after the client already held them (tracking clients only). */
  duplicateClocks = 0
  #gaps: Array<{ from: Map<number, number>, to: Map<number, number> }> = []
  #onSync: (() => void) | null = null
  closed = false

  constructor (options: ClientOptions) {
    this.options = options
    this.codec = makeCodec(options.dialect, options.room)
    const path = options.dialect === 'hocuspocus' ? '' : options.room
    this.ws = new WebSocket(`${options.url}/${path}`, { perMessageDeflate: false })
    this.ws.binaryType = 'nodebuffer'
    let handshakeDone!: () => void
    this.handshake = new Promise((resolve) => { handshakeDone = resolve })
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => {
        for (const frame of this.codec.hello(new Uint8Array([0]))) this.ws.send(frame)
        resolve()
      })
      this.ws.once('error', reject)
    })
    this.opened.catch(() => {})
    this.ws.on('error', () => {})
    this.ws.on('close', () => { this.closed = true })
    this.ws.on('message', (data: Buffer) => {
      const message = this.codec.decode(data)
      if (message.kind === 'other') return
      if (message.kind === 'step1') {
        this.ws.send(this.codec.step2(EMPTY_UPDATE))
        return
      }
      const at = now()
      if (message.kind === 'step2' && this.firstStep2 === null) {
        this.firstStep2 = message.payload
        handshakeDone()
      }
      this.lastSyncAt = at
      this.payloads.push(message.payload)
      if (this.options.track) this.#track(message.payload, at)
      this.#onSync?.()
    })
  }

  /** Calls `listener` after every sync payload (one listener). */
  onSync (listener: (() => void) | null): void {
    this.#onSync = listener
  }

  send (update: Uint8Array): void {
    this.ws.send(this.codec.update(update))
  }

  #track (payload: Uint8Array, at: number): void {
    const meta = Y.parseUpdateMeta(payload)
    if (!this.#advance(meta.from, meta.to, at)) {
      this.#gaps.push(meta)
      return
    }
    // A payload that filled a gap may let earlier out-of-order ones through.
    let progress = true
    while (progress && this.#gaps.length > 0) {
      progress = false
      this.#gaps = this.#gaps.filter((gap) => {
        const moved = this.#advance(gap.from, gap.to, at)
        if (moved) progress = true
        return !moved
      })
    }
  }

  #advance (from: Map<number, number>, to: Map<number, number>, at: number): boolean {
    for (const [client, start] of from) if (start > (this.cover.get(client) ?? 0)) return false
    for (const [client, end] of to) {
      const held = this.cover.get(client) ?? 0
      this.duplicateClocks += Math.max(0, Math.min(end, held) - (from.get(client) ?? 0))
      if (end <= held) continue
      this.cover.set(client, end)
      if (this.options.latency !== true) continue
      let times = this.arrivals.get(client)
      if (times === undefined) this.arrivals.set(client, times = [])
      for (let clock = held; clock < end; clock++) times[clock] = at
    }
    return true
  }

  /** The state vector of everything received, merged (exact, and costly: call when quiet). */
  received (): StateVector {
    if (this.payloads.length === 0) return new Map()
    const merged = this.payloads.length === 1 ? this.payloads[0]! : Y.mergeUpdates(this.payloads)
    this.payloads = [merged]
    return Y.decodeStateVector(Y.encodeStateVectorFromUpdate(merged))
  }

  /** The text of everything received, through a real Y.Doc. */
  text (): string {
    const doc = new Y.Doc()
    try {
      for (const payload of this.payloads) Y.applyUpdate(doc, payload)
      return doc.getText('text').toString()
    } finally {
      doc.destroy()
    }
  }

  close (): Promise<void> {
    if (this.closed || this.ws.readyState === WebSocket.CLOSED) return Promise.resolve()
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve())
      this.ws.close()
      setTimeout(() => { this.ws.terminate(); resolve() }, 2000).unref()
    })
  }
}
