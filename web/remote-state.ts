/**
 * Other clients' awareness states, cleaned before anything of the page reads them. Any client of the
 * room, read-only ones included, sets its state to whatever JSON it likes, and the state reaches every
 * editor as it is. y-codemirror draws a remote cursor from `user` and `cursor` without checking either: a
 * colour goes into a style attribute as it is, and a `cursor` of `{anchor: {}, head: {}}` makes it throw,
 * whereupon CodeMirror switches its remote-cursor plugin off, hiding every cursor for good. So each state
 * is rebuilt from fields of the expected shape; a field that is not is dropped, which costs that client
 * its cursor or its name, nobody else anything.
 */
import type { Awareness } from 'y-protocols/awareness'

/** The name of the shared text the editor edits: a cursor may point into it and nothing else. */
const TEXT_NAME = 'text'

export interface SafeUser {
  readonly name: string
  readonly color: string
  readonly colorLight: string
}

type Id = { readonly client: number, readonly clock: number }

/**
 * A relative position as Yjs writes it to JSON (`Y.relativePositionToJSON`), with checked fields. Every
 * field is there: Yjs tells "none" by null, and reads an id's fields from anything else.
 */
export interface SafePosition {
  readonly type: Id | null
  readonly tname: string | null
  readonly item: Id | null
  readonly assoc: number
}

export const safeColor = (value: unknown): string => typeof value === 'string' && /^#[0-9a-f]{6}$/i.test(value) ? value : '#888888'
export const safeName = (value: unknown): string => typeof value === 'string' && value.trim() !== '' ? value.slice(0, 40) : 'Anonymous'

const field = (value: unknown, key: string): unknown =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined

/** Another client's `user` field as it is safe to draw: a name of at most 40 characters, hex colours. */
export const safeUser = (user: unknown): SafeUser => {
  const color = safeColor(field(user, 'color'))
  const light = field(user, 'colorLight')
  return {
    name: safeName(field(user, 'name')),
    color,
    colorLight: typeof light === 'string' && /^#[0-9a-f]{6}([0-9a-f]{2})?$/i.test(light) ? light : `${color}33`,
  }
}

/**
 * A Yjs id: a client (32-bit from Yjs 13, 53-bit from Yjs 14: a cursor next to a Yjs 14 client's text
 * names its id) and a clock, both unsigned safe integers.
 */
const safeId = (value: unknown): Id | null => {
  const client = field(value, 'client')
  const clock = field(value, 'clock')
  const unsigned = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
  return unsigned(client) && unsigned(clock) ? { client, clock } : null
}

/**
 * A relative position the editor can resolve without throwing, or null. It names the item it sits before
 * (`item`) or, at the end of a type, the type: the editor's text by name, or a nested type by id. A name
 * other than the text's is refused too: resolving it would create that root type in the editor's document.
 */
export const safePosition = (value: unknown): SafePosition | null => {
  if (typeof value !== 'object' || value === null) return null
  const assocField = field(value, 'assoc')
  const assoc = typeof assocField === 'number' && Number.isFinite(assocField) ? Math.sign(assocField) : 0
  const item = field(value, 'item')
  if (item !== undefined && item !== null) {
    const id = safeId(item)
    return id === null ? null : { type: null, tname: null, item: id, assoc }
  }
  const tname = field(value, 'tname')
  if (tname !== undefined && tname !== null) return tname === TEXT_NAME ? { type: null, tname, item: null, assoc } : null
  const type = safeId(field(value, 'type'))
  return type === null ? null : { type, tname: null, item: null, assoc }
}

/** A `cursor` field the editor can draw (both ends resolvable), or null: no cursor for that client. */
export const safeCursor = (cursor: unknown): { anchor: SafePosition, head: SafePosition } | null => {
  const anchor = safePosition(field(cursor, 'anchor'))
  const head = safePosition(field(cursor, 'head'))
  return anchor === null || head === null ? null : { anchor, head }
}

/**
 * Replaces every other client's state with the fields the editor reads, checked, as each state arrives.
 * Must be added before anything else listens to `awareness`: Observable calls listeners in the order
 * they were added, so the editor and the list of people only ever see cleaned states.
 */
export const keepRemoteStatesSafe = (awareness: Awareness): void => {
  awareness.on('change', ({ added, updated }: { added: number[], updated: number[] }) => {
    for (const id of added.concat(updated)) {
      if (id === awareness.clientID || !awareness.states.has(id)) continue
      // A state is any JSON value: a string or a number in place of an object too.
      const state: unknown = awareness.states.get(id)
      const safe: Record<string, unknown> = {}
      const user = field(state, 'user')
      if (user !== undefined) safe.user = safeUser(user)
      const cursor = field(state, 'cursor')
      if (cursor !== undefined) safe.cursor = cursor === null ? null : safeCursor(cursor)
      awareness.states.set(id, safe)
    }
  })
}
