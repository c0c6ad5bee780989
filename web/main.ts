/**
 * The web editor: CodeMirror 6 bound to the room's `Y.Text` ("text"), presence, the connection status,
 * offline edits kept in IndexedDB, and the reconnect demo panel.
 */
import { basicSetup, EditorView } from 'codemirror'
import { keymap } from '@codemirror/view'
import * as Y from 'yjs'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { IndexeddbPersistence } from 'y-indexeddb'
import { mountDemoPanel } from './demo-panel.js'
import { byId } from './dom.js'
import { loadIdentity } from './identity.js'
import { mountPresence } from './presence-view.js'
import { keepRemoteStatesSafe } from './remote-state.js'
import { RelayProvider } from './provider.js'
import { randomRoomName, roomFromUrl, shareUrl, tokenFromUrl } from './room-url.js'
import { mountStatus } from './status-view.js'
import { websocketChannel } from './websocket-channel.js'
import { fallbackChannel } from './fallback-channel.js'
import { pollChannel } from './poll-channel.js'

const storage = ((): Storage | null => {
  try {
    return window.localStorage
  } catch {
    return null
  }
})()

const room = roomFromUrl(location.href) ?? randomRoomName()
// `?token=` for a server with AUTH_SECRET: sent with every connection, kept for this tab's reloads, and
// left out of the address bar, so that the link people share does not hand it on.
const token = ((): string | null => {
  const key = `yjs-relay:token:${room}`
  const given = tokenFromUrl(location.href)
  try {
    if (given !== null) sessionStorage.setItem(key, given)
    return given ?? sessionStorage.getItem(key)
  } catch {
    return given
  }
})()
// `?transport=poll` forces long-polling (to try it, or where upgrades hang instead of failing). Read
// before the address is rewritten to the share link, which leaves it out.
const forcePoll = new URL(location.href).searchParams.get('transport') === 'poll'
const link = shareUrl(location.href, room)
if (location.href !== link) history.replaceState(null, '', link)
document.title = `${room} · yjs-relay`
byId('room-name').textContent = room
// Another room in the address bar means another document: start over.
window.addEventListener('hashchange', () => { if (roomFromUrl(location.href) !== room) location.reload() })

const doc = new Y.Doc()
const text = doc.getText('text')
const persistence = new IndexeddbPersistence(`yjs-relay/${room}`, doc)
const serverUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`
// WebSocket when it connects; HTTP long-polling where upgrades are blocked, moving back when they work.
const channel = forcePoll ? pollChannel() : fallbackChannel(websocketChannel(), pollChannel())
const provider = new RelayProvider(serverUrl, room, doc, { channel, params: token === null ? {} : { token } })

// First of all the awareness listeners: the presence list and the editor see only cleaned states.
keepRemoteStatesSafe(provider.awareness)
mountPresence(provider.awareness, loadIdentity(storage), storage)
mountStatus(provider)
mountDemoPanel({ provider, apiBase: '' })

const undoManager = new Y.UndoManager(text)
const editor = new EditorView({
  doc: text.toString(),
  extensions: [
    keymap.of(yUndoManagerKeymap),
    basicSetup,
    EditorView.lineWrapping,
    EditorView.contentAttributes.of({ 'aria-label': 'Shared document', 'aria-multiline': 'true' }),
    yCollab(text, provider.awareness, { undoManager }),
  ],
  parent: byId('editor'),
})

const copy = byId<HTMLButtonElement>('copy-link')
const copied = byId('copy-result')
copy.addEventListener('click', () => {
  const done = (message: string): void => { copied.textContent = message }
  if (navigator.clipboard === undefined) {
    done(`Copy this link: ${link}`)
    return
  }
  navigator.clipboard.writeText(link).then(() => done('Link copied'), () => done(`Copy this link: ${link}`))
})

// A tiny service worker keeps the page itself, so a reload while offline still opens the editor with
// the edits IndexedDB holds.
if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/sw.js').catch(() => {})
}

// For the browser tests and for poking around in the console.
Object.assign(window, { yjsRelay: { Y, IndexeddbPersistence, doc, text, provider, persistence, editor, room } })
