/**
 * A channel carries y-websocket frames between one client and the server: a WebSocket, or HTTP
 * long-polling where WebSocket cannot connect. The provider speaks the protocol; a channel only moves
 * frames, so the provider works the same over either.
 */
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'

export type ChannelKind = 'websocket' | 'poll'

export interface Channel {
  readonly kind: ChannelKind
  /** Sends one frame (one message). Frames sent before `open` may be dropped. */
  send (frame: Uint8Array): void
  /** Closes the channel; `events.close` follows once. */
  close (code?: number, reason?: string): void
}

export interface ChannelEvents {
  open (): void
  message (frame: Uint8Array): void
  /** Called exactly once, whether or not `open` came first. Code 1006 when the connection failed. */
  close (code: number, reason: string): void
}

export interface ChannelTarget {
  /** Server base URL, e.g. `ws://localhost:8080` (a poll channel derives its http(s) URL from it). */
  readonly serverUrl: string
  readonly room: string
  /** Query parameters sent with every connection or request (e.g. `token`). */
  readonly params: Readonly<Record<string, string>>
  /** The document and awareness being synced: a poll channel needs their state to ask for what is missing. */
  readonly doc: Y.Doc
  readonly awareness: Awareness
}

export type ChannelFactory = (target: ChannelTarget, events: ChannelEvents) => Channel
