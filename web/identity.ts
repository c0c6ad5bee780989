/** The local user's display name and colour, kept in localStorage so they survive reloads. */

export interface Identity {
  readonly name: string
  /** `#rrggbb`. */
  readonly color: string
}

const NAME_KEY = 'yjs-relay:name'
const COLOR_KEY = 'yjs-relay:color'

const PALETTE = ['#d1495b', '#0077b6', '#2a9d8f', '#8338ec', '#e76f51', '#3a7d44', '#b5179e', '#6d597a']
const ANIMALS = ['Otter', 'Heron', 'Lynx', 'Marten', 'Puffin', 'Ibex', 'Gecko', 'Wren', 'Tapir', 'Stoat']

const pick = <T>(items: readonly T[], random: () => number): T => items[Math.floor(random() * items.length)]!

/** Storage may be off (private mode, a policy): then the identity lasts for the page only. */
const read = (storage: Storage | null, key: string): string | null => {
  try {
    return storage?.getItem(key) ?? null
  } catch {
    return null
  }
}

export const loadIdentity = (storage: Storage | null, random: () => number = Math.random): Identity => {
  const name = read(storage, NAME_KEY)?.trim()
  const color = read(storage, COLOR_KEY)
  const identity = {
    name: name !== undefined && name !== '' ? name.slice(0, 40) : `Anonymous ${pick(ANIMALS, random)}`,
    color: color !== null && /^#[0-9a-f]{6}$/i.test(color) ? color : pick(PALETTE, random),
  }
  saveIdentity(storage, identity)
  return identity
}

export const saveIdentity = (storage: Storage | null, identity: Identity): void => {
  try {
    storage?.setItem(NAME_KEY, identity.name)
    storage?.setItem(COLOR_KEY, identity.color)
  } catch {
    // Not persisted; still used for this page.
  }
}

/** What y-codemirror.next reads from an awareness state to draw a remote cursor. */
export const awarenessUser = (identity: Identity): { name: string, color: string, colorLight: string } => ({
  name: identity.name,
  color: identity.color,
  colorLight: `${identity.color}33`,
})
