/**
 * Which room a page edits: `?room=<name>` or `#<name>`; a fresh random one when neither is given, written
 * back into the URL so that the address bar is the link to share.
 */

/** The room named by a URL, or null. `?room=` wins over the hash. */
export const roomFromUrl = (href: string): string | null => {
  const url = new URL(href)
  const query = url.searchParams.get('room')
  if (query !== null && query.trim() !== '') return query
  const hash = url.hash.slice(1)
  if (hash === '') return null
  try {
    return decodeURIComponent(hash)
  } catch {
    // A malformed escape: take the text as it is rather than lose it.
    return hash
  }
}

/** The access token given in a URL (`?token=`, as the server's token CLI prints it for a room), or null. */
export const tokenFromUrl = (href: string): string | null => {
  const token = new URL(href).searchParams.get('token')
  return token === null || token.trim() === '' ? null : token.trim()
}

/** A room name nobody will guess: `note-` and 10 base-36 characters. */
export const randomRoomName = (random: (bytes: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b)): string => {
  const bytes = random(new Uint8Array(10))
  return `note-${Array.from(bytes, (b) => (b % 36).toString(36)).join('')}`
}

/** The URL that opens `room` on the page at `href`. */
export const shareUrl = (href: string, room: string): string => {
  const url = new URL(href)
  url.hash = ''
  url.search = ''
  url.searchParams.set('room', room)
  return url.toString()
}
