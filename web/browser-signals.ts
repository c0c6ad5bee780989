/**
 * What a browser tells a provider about reconnecting: it went offline or came back online, and a tab
 * became visible again (maybe after a laptop slept). Where there is no `window` (Node), there are no
 * signals and the connection is taken to be online.
 */
interface BrowserGlobals {
  addEventListener (type: string, listener: () => void): void
  removeEventListener (type: string, listener: () => void): void
  navigator?: { onLine?: boolean }
  document?: { visibilityState?: string, addEventListener (type: string, listener: () => void): void, removeEventListener (type: string, listener: () => void): void }
}

export interface BrowserSignalHandlers {
  online (): void
  offline (): void
  /** The tab became visible. */
  visible (): void
}

export class BrowserSignals {
  readonly #window: BrowserGlobals | null
  readonly #online: () => void
  readonly #offline: () => void
  readonly #visibility: () => void

  constructor (handlers: BrowserSignalHandlers) {
    const w = (globalThis as { window?: BrowserGlobals }).window
    this.#window = w !== undefined && typeof w.addEventListener === 'function' ? w : null
    this.#online = () => handlers.online()
    this.#offline = () => handlers.offline()
    this.#visibility = () => { if (this.#window?.document?.visibilityState === 'visible') handlers.visible() }
    this.#window?.addEventListener('online', this.#online)
    this.#window?.addEventListener('offline', this.#offline)
    this.#window?.document?.addEventListener('visibilitychange', this.#visibility)
  }

  /** False only where a browser says it is offline. */
  get online (): boolean {
    return this.#window?.navigator?.onLine !== false
  }

  close (): void {
    this.#window?.removeEventListener('online', this.#online)
    this.#window?.removeEventListener('offline', this.#offline)
    this.#window?.document?.removeEventListener('visibilitychange', this.#visibility)
  }
}
