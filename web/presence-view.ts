/** Who is here: the name and colour fields of the local user, and the list of everyone in the room. */
import type { Awareness } from 'y-protocols/awareness'
import { byId, h } from './dom.js'
import { awarenessUser, saveIdentity, type Identity } from './identity.js'

interface RemoteUser {
  readonly name?: unknown
  readonly color?: unknown
  readonly colorLight?: unknown
}

const safeColor = (value: unknown): string => typeof value === 'string' && /^#[0-9a-f]{6}$/i.test(value) ? value : '#888888'
const safeName = (value: unknown): string => typeof value === 'string' && value.trim() !== '' ? value.slice(0, 40) : 'Anonymous'

/** Another client's `user` field as it is safe to draw: a name of at most 40 characters, hex colours. */
export const safeUser = (user: RemoteUser): { name: string, color: string, colorLight: string } => {
  const color = safeColor(user.color)
  const light = user.colorLight
  return { name: safeName(user.name), color, colorLight: typeof light === 'string' && /^#[0-9a-f]{6}([0-9a-f]{2})?$/i.test(light) ? light : `${color}33` }
}

/**
 * Replaces every other client's `user` field with `safeUser` of it as it arrives. Added before the editor
 * listens, so that the editor draws remote cursors from safe fields only: y-codemirror writes a user's
 * colours into a style attribute as they are, and a colour of `red; position: fixed; inset: 0` from any
 * peer, read-only ones included, would cover everyone's page.
 */
export const keepRemoteUsersSafe = (awareness: Awareness): void => {
  awareness.on('change', ({ added, updated }: { added: number[], updated: number[] }) => {
    for (const id of added.concat(updated)) {
      const state = awareness.states.get(id)
      if (id === awareness.clientID || typeof state?.user !== 'object' || state.user === null) continue
      state.user = safeUser(state.user as RemoteUser)
    }
  })
}

export const mountPresence = (awareness: Awareness, initial: Identity, storage: Storage | null): void => {
  keepRemoteUsersSafe(awareness)
  const nameInput = byId<HTMLInputElement>('user-name')
  const colorInput = byId<HTMLInputElement>('user-color')
  const list = byId('people')
  const count = byId('people-count')
  let identity = initial
  nameInput.value = identity.name
  colorInput.value = identity.color

  const update = (): void => {
    const name = nameInput.value.trim().slice(0, 40)
    identity = { name: name === '' ? identity.name : name, color: safeColor(colorInput.value) }
    saveIdentity(storage, identity)
    awareness.setLocalStateField('user', awarenessUser(identity))
  }
  nameInput.addEventListener('input', update)
  colorInput.addEventListener('input', update)
  awareness.setLocalStateField('user', awarenessUser(identity))

  const render = (): void => {
    const people = [...awareness.getStates()]
      .filter(([, state]) => state !== null && typeof state === 'object' && 'user' in state)
      .map(([id, state]) => ({ id, user: (state as { user: RemoteUser }).user, me: id === awareness.clientID }))
      .sort((a, b) => Number(b.me) - Number(a.me) || safeName(a.user.name).localeCompare(safeName(b.user.name)))
    list.replaceChildren(...people.map(({ id, user, me }) => {
      const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' })
      swatch.style.backgroundColor = safeColor(user.color)
      return h('li', { 'data-client': String(id) }, swatch, safeName(user.name), me ? h('span', { class: 'me' }, ' (you)') : null)
    }))
    count.textContent = String(people.length)
  }
  awareness.on('change', render)
  render()
}
