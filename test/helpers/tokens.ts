import type { Client } from './clients.js'

/** Seeded PRNG (mulberry32): repeatable "random" moments and positions. */
export const rng = (seed: number): () => number => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Inserts the token `<writer.n>;` at a random token boundary, so tokens are never split by later inserts. */
export const insertToken = (client: Client, writer: number, n: number, random: () => number): string => {
  const token = `<${writer}.${n}>`
  const text = client.text.toString()
  const boundaries = [0]
  for (let i = text.indexOf(';'); i >= 0; i = text.indexOf(';', i + 1)) boundaries.push(i + 1)
  client.text.insert(boundaries[Math.floor(random() * boundaries.length)]!, `${token};`)
  return token
}

/** How often each token occurs in `text`. */
export const countTokens = (text: string): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const match of text.matchAll(/<\d+\.\d+>/g)) counts.set(match[0], (counts.get(match[0]) ?? 0) + 1)
  return counts
}

/** Tokens by other writers that `client` holds: it can only have them from the server. */
export const receivedTokens = (text: string, ownWriter: number | null): string[] =>
  [...countTokens(text).keys()].filter((token) => ownWriter === null || !token.startsWith(`<${ownWriter}.`))

/** Throws unless every token appears at most once (and the required ones exactly once). */
export const assertExactlyOnce = (text: string, required: Iterable<string>, what: string): void => {
  const counts = countTokens(text)
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([t]) => t)
  if (duplicated.length > 0) throw new Error(`${what}: duplicated tokens ${duplicated.slice(0, 10).join(' ')}`)
  const missing = [...required].filter((t) => !counts.has(t))
  if (missing.length > 0) throw new Error(`${what}: ${missing.length} tokens lost, e.g. ${missing.slice(0, 10).join(' ')}`)
}
