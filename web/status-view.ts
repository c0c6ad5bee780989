/**
 * The connection status, always visible: what the provider is doing now, the last disconnect and why,
 * and how long the last resync took.
 */
import { byId, clock, seconds } from './dom.js'
import { snapshot, type Stop } from './connection-state.js'
import type { RelayProvider } from './provider.js'

/** Keeps the status bar in step with the provider; returns a function that stops it. */
export const mountStatus = (provider: RelayProvider): () => void => {
  const badge = byId('status')
  const lastClose = byId('last-close')
  const lastResync = byId('last-resync')
  let stopped: Stop | null = null
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
  const onClosed = ({ code, reason }: Stop): void => {
    stopped = { code, reason }
    render()
  }
  const onStatus = (): void => {
    if (provider.shouldConnect) stopped = null
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
