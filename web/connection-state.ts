/**
 * What the provider is doing, in one word and one line for people: the status bar's text (status-view.ts
 * draws it). Free of the DOM, so that tests read it in Node.
 */
import { isTokenExpiry } from './close-codes.js'
import type { RelayProvider } from './provider.js'

export type ConnectionState = 'connecting' | 'syncing' | 'connected' | 'reconnecting' | 'offline' | 'stopped' | 'expired'

/** The final close that stopped the provider. */
export interface Stop {
  readonly code: number
  readonly reason: string
}

/** What the page says when the token of its link ran out: it has no other, so a person must get one. */
export const SESSION_EXPIRED = 'Session expired: the token in this page\'s link has run out. Ask for a new link to this room and open it; your edits stay on this device until then.'

export interface StatusSnapshot {
  readonly state: ConnectionState
  /** One line for people. */
  readonly text: string
}

/** What the provider is doing, in one word and one line. */
export const snapshot = (provider: RelayProvider, stopped: Stop | null, everSynced: boolean, now: number): StatusSnapshot => {
  if (stopped !== null && isTokenExpiry(stopped.code, stopped.reason)) return { state: 'expired', text: SESSION_EXPIRED }
  if (stopped !== null) return { state: 'stopped', text: 'Stopped: the server refused this connection' }
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
