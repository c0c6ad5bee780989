/** The events and options of RelayProvider (provider.ts). */
import type { Awareness } from 'y-protocols/awareness'
import type { BackoffOptions } from './backoff.js'
import type { ChannelFactory, ChannelKind } from './channel.js'
import type { RelayProvider } from './provider.js'

export type ProviderStatus = 'connecting' | 'connected' | 'disconnected'

/** A closed (or failed) connection. */
export interface ConnectionClose {
  readonly code: number
  readonly reason: string
  /** The cause in words (see close-codes.ts). */
  readonly cause: string
  /** The server said not to retry (4400-4499). */
  readonly final: boolean
  /** This client closed it (disconnect, offline, silence, timeout, transport switch). */
  readonly local: boolean
  /** Whether the connection had opened. */
  readonly opened: boolean
  readonly kind: ChannelKind
  /** `Date.now()` when it closed. */
  readonly at: number
}

export interface ReconnectScheduled {
  /** Failed attempts since the last successful sync (1 for the first retry). */
  readonly attempt: number
  readonly delayMs: number
  /** `Date.now()` of the retry. */
  readonly at: number
}

export interface Resynced {
  /** From the channel opening to the first sync on it. */
  readonly durationMs: number
  /** From the previous connection closing to this sync; null on the first connection. */
  readonly outageMs: number | null
  readonly kind: ChannelKind
}

export interface ProviderEvents {
  status (event: { status: ProviderStatus }): void
  sync (synced: boolean): void
  synced (synced: boolean): void
  'connection-close' (event: ConnectionClose, provider: RelayProvider): void
  /** A connection that closed before it opened. */
  'connection-error' (event: ConnectionClose, provider: RelayProvider): void
  /** The server closed with a final code: no more retries until `connect()` is called. */
  closed (event: { code: number, reason: string }, provider: RelayProvider): void
  'reconnect-scheduled' (event: ReconnectScheduled): void
  resynced (event: Resynced): void
  /** A connection attempt starts on this kind of channel. */
  transport (event: { kind: ChannelKind }): void
  'permission-denied' (event: { reason: string }): void
  /** The browser went offline or online (never emitted where there is no `window`). */
  online (online: boolean): void
}

export interface ProviderOptions {
  /** Connect at once. Default true. */
  readonly connect?: boolean
  readonly awareness?: Awareness
  /** Query parameters of every connection (e.g. `token`). */
  readonly params?: Record<string, string>
  /**
   * Called before every connection (the first and each reconnect); what it returns goes into
   * `params.token`. With it, a close for `token expired` (4401, the token ran out while connected, or was
   * stale when the connection opened) is not final: the provider reconnects, asking for a new token. A
   * throw or rejection counts as a failed attempt, retried with backoff.
   */
  readonly getToken?: () => string | Promise<string>
  /**
   * How to reach the server. Required: e.g. `websocketChannel()`, or
   * `fallbackChannel(websocketChannel(), pollChannel())` to use long-polling where WebSocket cannot connect.
   */
  readonly channel: ChannelFactory
  readonly backoff?: BackoffOptions
  /** Source of jitter. Default Math.random. */
  readonly random?: () => number
  /** Give up on a connection that has not opened after this long. Default 10 s. */
  readonly connectTimeoutMs?: number
  /** Close a connection that received nothing for this long (the server echoes awareness every 15 s). Default 30 s. */
  readonly silenceTimeoutMs?: number
  /** Send sync step 1 this often while connected; null for never. Default null. */
  readonly resyncIntervalMs?: number | null
}
