/** Who is here: the name and colour fields of the local user, and the list of everyone in the room. */
import type { Awareness } from 'y-protocols/awareness'
import { byId, h } from './dom.js'
import { awarenessUser, saveIdentity, type Identity } from './identity.js'
import { safeColor, safeName } from './remote-state.js'

interface RemoteUser {
  readonly name?: unknown
  readonly color?: unknown
}

export const mountPresence = (awareness: Awareness, initial: Identity, storage: Storage | null): void => {
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
