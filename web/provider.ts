/**
 * A Yjs provider that speaks the y-websocket protocol over a Channel and reconnects the way a fleet of
 * clients should: exponential backoff with jitter, an immediate retry when the browser comes back online
 * or the tab becomes visible, and no retry after a final close (4400-4499).
 *
 * It has the public shape of y-websocket's `WebsocketProvider` (`doc`, `awareness`, `roomname`,
 * `synced`, `wsconnected`, `connect()`, `disconnect()`, `destroy()`, events `status`, `sync`, `synced`,
 * `connection-close`, `connection-error`, `closed`), so code written for that one works with this one.
 *
 * The handshake, per connection: once the channel opens we send sync step 1 (our state vector) and our
 * awareness state; the server sends its step 1, which we answer with step 2 (everything it lacks: the
 * edits made while we were away); its step 2 answers ours, and from then on we are `synced`. Updates and
 * awareness changes flow both ways as they happen.
 *
 * Which transport to use is the channel's business, not the provider's: `fallbackChannel` (fallback-channel.ts)
 * composes WebSocket with long-polling.
 *
 * It touches no DOM: `window`/`document` listeners are added only where they exist, so it runs in Node.
 */
import type * as Y from 'yjs'
import { ObservableV2 } from 'lib0/observable'
import * as awarenessProtocol from 'y-protocols/awareness'
import { checkNumber } from '../server/option-check.js'
import { AwarenessThrottle } from './awareness-throttle.js'
import { backoffDelay, backoffOptions, type Backoff } from './backoff.js'
import { BrowserSignals } from './browser-signals.js'
import type { Channel, ChannelFactory, ChannelKind } from './channel.js'
import { describeClose, isFinalClose, isTokenExpiry, LocalClose } from './close-codes.js'
import type { ConnectionClose, ProviderEvents, ProviderOptions, ProviderStatus, Resynced } from './provider-events.js'
import { awarenessFrame, readFrame, syncStep1Frame, updateFrame, type FrameResult } from './sync-messages.js'

export type { ConnectionClose, ProviderEvents, ProviderOptions, ProviderStatus, ReconnectScheduled, Resynced } from './provider-events.js'

interface Attempt {
  channel: Channel | null
  /** What the attempt started on; once open, what the channel says it is (a composed channel may differ). */
  kind: ChannelKind
  opened: boolean
  closed: boolean
  openedAt: number
}

const unref = (timer: unknown): void => { (timer as { unref?: () => void }).unref?.() }

export class RelayProvider extends ObservableV2<ProviderEvents> {
  readonly doc: Y.Doc
  readonly awareness: awarenessProtocol.Awareness
  readonly roomname: string
  readonly serverUrl: string
  /** Used for the next connection; may be changed (e.g. a fresh token). */
  params: Record<string, string>
  /** Whether the provider wants to be connected (false after `disconnect()` or a final close). */
  shouldConnect = false

  readonly #channel: ChannelFactory
  readonly #getToken: (() => string | Promise<string>) | null
  readonly #backoff: Backoff
  readonly #random: () => number
  readonly #connectTimeoutMs: number
  readonly #silenceTimeoutMs: number
  readonly #browser: BrowserSignals

  #attempt: Attempt | null = null
  #synced = false
  #failures = 0
  #retryTimer: ReturnType<typeof setTimeout> | null = null
  #retryAt: number | null = null
  #connectTimer: ReturnType<typeof setTimeout> | null = null
  #lastMessageAt = 0
  #disconnectedAt: number | null = null
  #lastClose: ConnectionClose | null = null
  #lastResync: Resynced | null = null
  readonly #watchdog: ReturnType<typeof setInterval>
  readonly #resync: ReturnType<typeof setInterval> | null
  #destroyed = false
  readonly #awarenessThrottle = new AwarenessThrottle((clients) => this.#send(awarenessFrame(this.awareness, clients)))

  constructor (serverUrl: string, roomname: string, doc: Y.Doc, options: ProviderOptions) {
    super()
    if (typeof options?.channel !== 'function') throw new TypeError('RelayProvider: options.channel must be a ChannelFactory')
    for (const removed of ['fallback', 'fallbackAfterFailures', 'returnProbeMs']) {
      if (removed in options) throw new TypeError(`RelayProvider: options.${removed} is gone; pass channel: fallbackChannel(primary, secondary) instead`)
    }
    this.serverUrl = serverUrl.replace(/\/+$/, '')
    this.roomname = roomname
    this.doc = doc
    this.awareness = options.awareness ?? new awarenessProtocol.Awareness(doc)
    this.params = { ...(options.params ?? {}) }
    this.#channel = options.channel
    if (options.getToken !== undefined && typeof options.getToken !== 'function') throw new TypeError('RelayProvider: options.getToken must be a function')
    this.#getToken = options.getToken ?? null
    this.#backoff = backoffOptions(options.backoff)
    this.#random = options.random ?? Math.random
    this.#connectTimeoutMs = checkNumber('connectTimeoutMs', options.connectTimeoutMs ?? 10_000, { min: 10, whole: false })
    this.#silenceTimeoutMs = checkNumber('silenceTimeoutMs', options.silenceTimeoutMs ?? 30_000, { min: 100, whole: false })
    const resync = options.resyncIntervalMs ?? null
    this.#resync = resync === null ? null : setInterval(() => this.#sendSyncStep1(), checkNumber('resyncIntervalMs', resync, { min: 10, whole: false }))
    if (this.#resync !== null) unref(this.#resync)
    this.#watchdog = setInterval(() => this.#checkSilence(), Math.max(50, this.#silenceTimeoutMs / 10))
    unref(this.#watchdog)

    doc.on('update', this.#onDocUpdate)
    this.awareness.on('update', this.#onAwarenessUpdate)
    this.#browser = new BrowserSignals({ online: this.#onOnline, offline: this.#onOffline, visible: this.#onVisible })
    if (options.connect ?? true) this.connect()
  }

  /** The connection is open (it may not have synced yet). */
  get wsconnected (): boolean {
    return this.#attempt?.opened === true
  }

  get wsconnecting (): boolean {
    return this.#attempt !== null && !this.#attempt.opened
  }

  get status (): ProviderStatus {
    return this.wsconnected ? 'connected' : this.wsconnecting ? 'connecting' : 'disconnected'
  }

  get synced (): boolean {
    return this.#synced
  }

  set synced (state: boolean) {
    if (this.#synced === state) return
    this.#synced = state
    this.emit('synced', [state])
    this.emit('sync', [state])
  }

  /** The kind of channel in use ('websocket' until a channel that opened says otherwise). */
  get transport (): ChannelKind {
    return this.#attempt?.kind ?? 'websocket'
  }

  /** Failed attempts since the last successful sync. */
  get failures (): number {
    return this.#failures
  }

  /** `Date.now()` of the scheduled retry, or null. */
  get nextRetryAt (): number | null {
    return this.#retryAt
  }

  get lastClose (): ConnectionClose | null {
    return this.#lastClose
  }

  get lastResync (): Resynced | null {
    return this.#lastResync
  }

  /** False only where a browser says it is offline. */
  get online (): boolean {
    return this.#browser.online
  }

  /** Connects now (cancelling a scheduled retry), and keeps reconnecting until `disconnect()`. */
  connect (): void {
    if (this.#destroyed) return
    this.shouldConnect = true
    if (this.#attempt === null) this.#open()
  }

  /** Closes the connection and stops reconnecting. */
  disconnect (): void {
    this.shouldConnect = false
    this.#clearRetry()
    const attempt = this.#attempt
    // Still waiting for getToken: no channel to close yet.
    if (attempt !== null && attempt.channel === null) this.#closed(attempt, LocalClose.REQUESTED, 'disconnect')
    else attempt?.channel?.close(LocalClose.REQUESTED, 'disconnect')
  }

  override destroy (): void {
    if (this.#destroyed) return
    this.disconnect()
    this.#destroyed = true
    clearInterval(this.#watchdog)
    if (this.#resync !== null) clearInterval(this.#resync)
    this.doc.off('update', this.#onDocUpdate)
    this.awareness.off('update', this.#onAwarenessUpdate)
    this.#awarenessThrottle.close()
    this.#browser.close()
    super.destroy()
  }

  #open (): void {
    this.#clearRetry()
    if (!this.online) {
      // No point trying: the `online` event brings us back at once.
      this.emit('status', [{ status: 'disconnected' }])
      return
    }
    const attempt: Attempt = { channel: null, kind: 'websocket', opened: false, closed: false, openedAt: 0 }
    this.#attempt = attempt
    this.emit('transport', [{ kind: attempt.kind }])
    this.emit('status', [{ status: 'connecting' }])
    const getToken = this.#getToken
    if (getToken === null) return this.#start(attempt)
    Promise.resolve().then(() => getToken()).then((token) => {
      if (this.#attempt !== attempt || attempt.closed) return
      if (typeof token !== 'string' || token === '') throw new TypeError(`getToken gave ${JSON.stringify(token)}, not a token`)
      this.params = { ...this.params, token }
      this.#start(attempt)
    }).catch((error: unknown) => {
      if (this.#attempt === attempt && !attempt.closed) this.#closed(attempt, 1006, `getToken failed: ${error instanceof Error ? error.message : String(error)}`)
    })
  }

  #start (attempt: Attempt): void {
    try {
      attempt.channel = this.#channel({ serverUrl: this.serverUrl, room: this.roomname, params: this.params, doc: this.doc, awareness: this.awareness }, {
        open: () => this.#opened(attempt),
        message: (frame) => this.#receive(attempt, frame),
        close: (code, reason) => this.#closed(attempt, code, reason),
      })
    } catch (error) {
      // A factory that throws (e.g. a bad URL) is a failed attempt like any other: retried with backoff.
      if (!attempt.closed) this.#closed(attempt, 1006, error instanceof Error ? error.message : String(error))
    }
    if (attempt.closed || this.#attempt !== attempt) return
    this.#connectTimer = setTimeout(() => {
      if (this.#attempt === attempt && !attempt.opened) attempt.channel?.close(LocalClose.CONNECT_TIMEOUT, 'connect timeout')
    }, this.#connectTimeoutMs)
    unref(this.#connectTimer)
  }

  #opened (attempt: Attempt): void {
    if (this.#attempt !== attempt || attempt.closed) return
    this.#clearConnectTimer()
    attempt.opened = true
    attempt.openedAt = Date.now()
    const kind = attempt.channel?.kind ?? attempt.kind
    if (kind !== attempt.kind) {
      attempt.kind = kind
      this.emit('transport', [{ kind }])
    }
    this.#lastMessageAt = attempt.openedAt
    this.emit('status', [{ status: 'connected' }])
    this.#sendSyncStep1()
    // Announce ourselves with a new clock: the server dropped our state when the last connection closed
    // but remembers its clock, and ignores a state that is not newer. Our update handler sends it.
    const local = this.awareness.getLocalState()
    if (local !== null) this.awareness.setLocalState(local)
  }

  #receive (attempt: Attempt, frame: Uint8Array): void {
    if (this.#attempt !== attempt || attempt.closed) return
    this.#lastMessageAt = Date.now()
    let result: FrameResult
    try {
      result = readFrame(frame, this.doc, this.awareness, this, (reason) => this.emit('permission-denied', [{ reason }]))
    } catch (error) {
      // A frame we cannot read leaves our document in an unknown state relative to the server: start over.
      attempt.channel?.close(1002, `unreadable message: ${error instanceof Error ? error.message : String(error)}`)
      return
    }
    if (result.syncStep2 && !this.#synced) this.#becameSynced(attempt)
    if (result.reply !== null) this.#send(result.reply)
  }

  #becameSynced (attempt: Attempt): void {
    const now = Date.now()
    this.#failures = 0
    const resynced: Resynced = {
      durationMs: now - attempt.openedAt,
      outageMs: this.#disconnectedAt === null ? null : now - this.#disconnectedAt,
      kind: attempt.kind,
    }
    this.#disconnectedAt = null
    this.#lastResync = resynced
    this.synced = true
    this.emit('resynced', [resynced])
  }

  #closed (attempt: Attempt, code: number, reason: string): void {
    if (attempt.closed) return
    attempt.closed = true
    if (this.#attempt !== attempt) return
    this.#attempt = null
    this.#clearConnectTimer()
    const local = code === LocalClose.REQUESTED && reason === 'disconnect' ? true : code >= 4990 && code <= 4999
    const info: ConnectionClose = {
      code,
      reason,
      cause: describeClose(code, reason),
      // A token that ran out is renewed by getToken, when there is one.
      final: !local && isFinalClose(code) && !(this.#getToken !== null && isTokenExpiry(code, reason)),
      local,
      opened: attempt.opened,
      kind: attempt.kind,
      at: Date.now(),
    }
    this.#lastClose = info
    if (attempt.opened) {
      this.#disconnectedAt ??= info.at
      this.synced = false
      // Everyone else's cursor is stale until we hear from the server again.
      const others = [...this.awareness.getStates().keys()].filter((id) => id !== this.doc.clientID)
      awarenessProtocol.removeAwarenessStates(this.awareness, others, this)
      // Forget their clocks too, or the same states sent again on reconnect would look old and be ignored.
      for (const id of others) this.awareness.meta.delete(id)
    }
    // A channel that closes with SWITCHED (it moves to a better transport: see fallbackChannel's
    // `switchCode`) failed at nothing: reconnect at once, without counting a failure.
    if (code !== LocalClose.SWITCHED) this.#failures++
    this.emit('status', [{ status: 'disconnected' }])
    this.emit('connection-close', [info, this])
    if (!attempt.opened) this.emit('connection-error', [info, this])
    if (info.final) {
      this.shouldConnect = false
      this.emit('closed', [{ code, reason }, this])
      return
    }
    if (!this.shouldConnect || this.#destroyed) return
    if (code === LocalClose.SWITCHED) this.#open()
    else this.#scheduleRetry()
  }

  #scheduleRetry (): void {
    if (!this.online) return
    const delayMs = backoffDelay(this.#failures - 1, this.#backoff, this.#random)
    this.#retryAt = Date.now() + delayMs
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null
      this.#retryAt = null
      if (this.shouldConnect && this.#attempt === null) this.#open()
    }, delayMs)
    this.emit('reconnect-scheduled', [{ attempt: this.#failures, delayMs, at: this.#retryAt }])
  }

  #clearRetry (): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    this.#retryTimer = null
    this.#retryAt = null
  }

  #clearConnectTimer (): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer)
    this.#connectTimer = null
  }

  #send (frame: Uint8Array): void {
    const attempt = this.#attempt
    if (attempt?.opened === true && !attempt.closed) attempt.channel?.send(frame)
  }

  #sendSyncStep1 (): void {
    this.#send(syncStep1Frame(this.doc))
  }

  #checkSilence (): void {
    const attempt = this.#attempt
    if (attempt?.opened === true && Date.now() - this.#lastMessageAt > this.#silenceTimeoutMs) {
      attempt.channel?.close(LocalClose.SILENT, 'nothing received')
    }
  }

  #onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this) return
    this.#send(updateFrame(update))
  }

  #onAwarenessUpdate = ({ added, updated, removed }: { added: number[], updated: number[], removed: number[] }, origin: unknown): void => {
    if (origin === this) {
      // The server removed our state: a socket we had before closed, here or on an instance we left, and
      // it said so after we were back. y-protocols kept our state and raised its clock past the removal;
      // announce it, or the others would not see it until its renewal 15 s later.
      const me = this.doc.clientID
      if (removed.includes(me) && this.awareness.getLocalState() !== null) this.#send(awarenessFrame(this.awareness, [me]))
      return
    }
    this.#awarenessThrottle.changed(added.concat(updated, removed))
  }

  #onOnline = (): void => {
    this.emit('online', [true])
    if (this.shouldConnect && this.#attempt === null) this.#open()
  }

  #onOffline = (): void => {
    this.emit('online', [false])
    this.#clearRetry()
    this.#attempt?.channel?.close(LocalClose.OFFLINE, 'offline')
  }

  #onVisible = (): void => {
    // Back from a hidden tab (maybe a sleeping laptop): retry now instead of at the end of a long backoff,
    // and do not trust a connection that has been silent.
    this.#checkSilence()
    if (this.shouldConnect && this.#attempt === null) this.#open()
  }
}
