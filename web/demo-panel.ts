/**
 * The reconnect demo: buttons that ask the server to drop this connection as the one-hour limit would
 * (4000) or every connection of the room as a restart would (1012), and a log of what the provider did
 * about it. The buttons are shown only when the server runs with DEMO=true.
 */
import { byId, clock, h, seconds } from './dom.js'
import type { RelayProvider } from './provider.js'
import { serverRoomName } from './websocket-channel.js'

const MAX_LOG = 60

export interface DemoPanelOptions {
  readonly provider: RelayProvider
  /** Base of the HTTP API, e.g. `''` for the page's own origin. */
  readonly apiBase: string
}

export const mountDemoPanel = ({ provider, apiBase }: DemoPanelOptions): void => {
  const log = byId<HTMLOListElement>('event-log')
  const controls = byId('demo-controls')
  const note = byId('demo-note')
  const closeMe = byId<HTMLButtonElement>('demo-close-me')
  const restart = byId<HTMLButtonElement>('demo-restart')

  const add = (kind: string, text: string): void => {
    log.prepend(h('li', { 'data-kind': kind }, h('time', {}, clock(Date.now())), ' ', text))
    while (log.children.length > MAX_LOG) log.lastElementChild?.remove()
  }

  provider.on('connection-close', (close) => {
    if (close.opened) add('disconnect', `Disconnected: ${close.code}, ${close.cause}`)
    else add('failed', `Could not connect (${close.kind}): ${close.code}, ${close.cause}`)
  })
  provider.on('reconnect-scheduled', ({ attempt, delayMs }) => add('retry', `Reconnect attempt ${attempt} in ${seconds(delayMs)}`))
  provider.on('status', ({ status }) => { if (status === 'connected') add('connect', `Connected over ${provider.transport}`) })
  provider.on('resynced', ({ durationMs, outageMs }) =>
    add('resync', `Synced in ${seconds(durationMs)}${outageMs === null ? '' : ` (offline for ${seconds(outageMs)})`}`))
  provider.on('closed', ({ code }) => add('stopped', `The server closed with ${code}: not reconnecting`))
  provider.on('online', (online) => add(online ? 'online' : 'offline', online ? 'The browser is online' : 'The browser is offline'))

  // The demo API names the room as the server does: the raw path of the WebSocket URL.
  const room = serverRoomName(provider.roomname)
  const post = async (path: string, what: string): Promise<void> => {
    try {
      const response = await fetch(`${apiBase}/api/demo/${room}/${path}`, { method: 'POST' })
      const text = (await response.text()).trim()
      add('demo', response.ok ? `Asked the server to ${what}` : `The server refused to ${what}: ${text}`)
    } catch (error) {
      add('demo', `Could not reach the server to ${what}: ${(error as Error).message}`)
    }
  }
  closeMe.addEventListener('click', () => { void post(`close-me?client=${provider.doc.clientID}`, 'close this connection (4000)') })
  // Long-polling holds no connection the server could drop: each request is its own.
  const onTransport = (): void => {
    const polling = provider.transport === 'poll'
    closeMe.disabled = polling
    closeMe.title = polling ? 'This page is long-polling: there is no connection to drop, and a restart closes only WebSockets' : ''
  }
  provider.on('transport', onTransport)
  provider.on('status', onTransport)
  onTransport()
  restart.addEventListener('click', () => { void post('restart', 'restart the room (1012)') })

  let asked = false
  const ask = (): void => {
    // Offline, the request would only fail (and the browser would log it): ask once we are back.
    if (asked || !provider.online) return
    asked = true
    fetch(`${apiBase}/api/demo`).then(async (response) => {
      const body = response.ok ? await response.json() as { enabled?: unknown } : {}
      show(body.enabled === true)
    }).catch(() => {
      asked = false
    })
  }
  const show = (enabled: boolean): void => {
    controls.hidden = !enabled
    note.textContent = enabled
      ? 'This server runs with DEMO=true: these buttons drop real connections.'
      : 'The demo is off on this server (start it with DEMO=true to drop connections from here). The log still shows every disconnect.'
  }
  provider.on('online', ask)
  ask()
}
