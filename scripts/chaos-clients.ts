import * as decoding from 'lib0/decoding'
import * as prng from 'lib0/prng'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { connectChannelClient, type ChannelClient } from '../test/helpers/channel-client.js'
import { insertToken } from '../test/helpers/cluster.js'
import type { ChannelFactory } from '../web/channel.js'
import { pollChannel } from '../web/poll-channel.js'

/**
 * The clients of a chaos run: stock y-websocket providers and long-poll clients, all through the
 * no-affinity proxy, each writing unique tokens into one shared text. Every frame a client receives is
 * tapped: an update that carries an author's structs up to some clock proves that a server committed
 * them (servers broadcast and echo only what they committed), so an edit counts as seen once any client
 * of its room received a frame that covers it, its author's own echo included.
 */
export interface ChaosClient {
  readonly name: string
  readonly kind: 'websocket' | 'poll'
  readonly room: string
  readonly doc: Y.Doc
  readonly text: Y.Text
  /** Connected and synced with some instance right now. */
  readonly ready: boolean
  /** Highest clock per author that arrived in a frame from a server. */
  readonly received: ReadonlyMap<number, number>
  /** Drops the connection so that the client reconnects, through the proxy, to another instance. */
  hop (): void
  destroy (): void
}

/** One token a client wrote: present exactly once everywhere at the end, or the run failed. */
export interface Edit {
  readonly token: string
  readonly room: string
  readonly author: number
  /** The author's clock just after the insert: a frame covering it carries the edit. */
  readonly clock: number
  readonly client: string
}

process.setMaxListeners(0)

/** Records the highest clock per author of every update in a y-websocket frame. */
const tap = (received: Map<number, number>, frame: Uint8Array): void => {
  try {
    const decoder = decoding.createDecoder(frame)
    if (decoding.readVarUint(decoder) !== 0) return
    const subtype = decoding.readVarUint(decoder)
    if (subtype !== 1 && subtype !== 2) return
    const { to } = Y.parseUpdateMeta(decoding.readVarUint8Array(decoder))
    for (const [client, clock] of to) if (clock > (received.get(client) ?? 0)) received.set(client, clock)
  } catch {
    // Not an update frame this tap understands: it proves nothing.
  }
}

const toBytes = (data: WebSocket.RawData): Uint8Array => {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data))
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

export const connectWebsocketClient = (serverUrl: string, room: string, name: string): ChaosClient => {
  const received = new Map<number, number>()
  // The stock provider, on a `ws` socket that reports every frame it receives before the provider reads it.
  class TappedWebSocket extends WebSocket {
    constructor (url: string, protocols?: string | string[]) {
      super(url, protocols)
      this.on('message', (data: WebSocket.RawData) => tap(received, toBytes(data)))
    }
  }
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(serverUrl, room, doc, {
    WebSocketPolyfill: TappedWebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  })
  return {
    name,
    kind: 'websocket',
    room,
    doc,
    text: doc.getText('text'),
    get ready () { return provider.wsconnected && provider.synced },
    received,
    hop: () => {
      const ws = provider.ws as unknown as { _socket?: { destroy (): void } } | null
      ws?._socket?.destroy()
    },
    destroy: () => {
      provider.destroy()
      doc.destroy()
    },
  }
}

export const connectPollClient = (serverUrl: string, room: string, name: string): ChaosClient => {
  const received = new Map<number, number>()
  const inner = pollChannel({ retryDelayMs: 100, requestTimeoutMs: 30_000 })
  const tapped: ChannelFactory = (target, events) => inner(target, {
    ...events,
    message: (frame) => {
      tap(received, frame)
      events.message(frame)
    },
  })
  const client: ChannelClient = connectChannelClient(tapped, { serverUrl, room })
  return {
    name,
    kind: 'poll',
    room,
    doc: client.doc,
    text: client.text,
    get ready () { return client.kind !== null && client.synced },
    received,
    // Every poll and send already goes to whichever instance the proxy picks next.
    hop: () => {},
    destroy: () => client.destroy(),
  }
}

/**
 * Writes a token into `client` at a random token boundary and returns the edit; offline clients write
 * too, as people do, and their edits must arrive once they reconnect.
 */
export const writeToken = (client: ChaosClient, token: string, gen: prng.PRNG): Edit => {
  insertToken({ text: client.text } as Parameters<typeof insertToken>[0], token, () => prng.real53(gen))
  return { token, room: client.room, author: client.doc.clientID, clock: Y.getState(client.doc.store, client.doc.clientID), client: client.name }
}

/** True when some client of the edit's room received a frame covering it. */
export const wasSeen = (edit: Edit, clients: readonly ChaosClient[]): boolean =>
  clients.some((c) => c.room === edit.room && (c.received.get(edit.author) ?? 0) >= edit.clock)
