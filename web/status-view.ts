/**
 * The connection status, always visible: what the provider is doing now, the last disconnect and why,
 * and how long the last resync took.
 */
import { byId, clock, seconds } from './dom.js'
import type { RelayProvider } from './provider.js'

export type ConnectionState = 'connecting' | 'syncing' | 'connected' | 'reconnecting' | 'offline' | 'stopped'

export interface StatusSnapshot {
  readonly state: ConnectionState
  /** One line for people. */
  readonly text: string
}

/** What the provider is doing, in one word and one line. */
export const snapshot = (provider: RelayProvider, stopped: boolean, everSynced: boolean, now: number): StatusSnapshot => {
  if (stopped) return { state: 'stopped', text: 'Stopped: the server refused this connection' }
  if (!provider.online) return { state: 'offline', text: 'Offline: edits are kept on this device' }
  if (provider.wsconnected) {
    return provider.synced
      ? { state: 'connected', text: `Connected (${provider.transport})` }
      : { state: 'syncing', text: 'Syncing…' }
  }
  if (!everSynced && provider.failures === 0) return { state: 'connecting', text: 'Connecting…' }
  const at = provider.nextRetryAt
  const next = at === null ? (provider.wsconnecting ? 'trying now' : 'waiting') : `next try in ${Math.max(0, (at - now) / 1000).toFixed(1)} s`
  return { state: 'reconnecting', text: `Reconnecting (attempt ${provider.failures}, ${next})` }
}

/** Keeps the status bar in step with the provider; returns a function that stops it. */
export const mountStatus = (provider: RelayProvider): () => void => {
  const badge = byId('status')
  const lastClose = byId('last-close')
  const lastResync = byId('last-resync')
  let stopped = false
  let everSynced = false

  const render = (): void => {
    const now = Date.now()
    const { state, text } = snapshot(provider, stopped, everSynced, now)
    if (badge.textContent !== text) badge.textContent = text
    badge.dataset.state = state
    const close = provider.lastClose
    lastClose.textContent = close === null
      ? 'none yet'
      : `${close.code}, ${close.cause} (${clock(close.at)})`
    const resync = provider.lastResync
    lastResync.textContent = resync === null
      ? 'not yet'
      : `${seconds(resync.durationMs)}${resync.outageMs === null ? '' : `, after ${seconds(resync.outageMs)} away`}`
  }
  const onSync = (synced: boolean): void => {
    if (synced) everSynced = true
    render()
  }
  const onClosed = (): void => {
    stopped = true
    render()
  }
  const onStatus = (): void => {
    if (provider.shouldConnect) stopped = false
    render()
  }
  provider.on('status', onStatus)
  provider.on('sync', onSync)
  provider.on('closed', onClosed)
  provider.on('reconnect-scheduled', render)
  provider.on('online', render)
  // The countdown moves on its own.
  const timer = setInterval(render, 250)
  render()
  return () => {
    clearInterval(timer)
    provider.off('status', onStatus)
    provider.off('sync', onSync)
    provider.off('closed', onClosed)
    provider.off('reconnect-scheduled', render)
    provider.off('online', render)
  }
}
