/**
 * One room's Redis stream as the bus sees it: its key, the fields of an entry, and handing what it
 * carries to the room's handlers. An entry is `i` (the publishing instance), `k` (its kind) and `d`
 * (the bytes); an instance skips the entries it published itself.
 */
import type { Logger } from 'pino'
import type { BusHandler, BusMessage } from './bus.js'
import type { AwarenessOwners } from './awareness-owners.js'

/** Entry kinds: an update, an awareness change, or `gap`, which tells readers to reload from storage. */
export const KIND = { update: 'u', awareness: 'a', gap: 'g' } as const

/** A room's stream this instance reads, and who hears of it. */
export interface Stream {
  readonly key: string
  readonly handlers: Set<BusHandler>
  /** Which instance announced each awareness client, to remove them when that instance dies. */
  readonly awarenessOwners: AwarenessOwners
  /** The id of the last entry delivered (or skipped); reading resumes after it. */
  lastId: string
}

/** Redis key names under one deployment's prefix. */
export const streamKey = (prefix: string, room: string): string => `${prefix}room:${room}`
export const aliveKey = (prefix: string, instance: string): string => `${prefix}instance:${instance}`

/** Compares two stream ids (`ms-seq`). */
export const compareIds = (a: string, b: string): number => {
  const [am = '0', as = '0'] = a.split('-')
  const [bm = '0', bs = '0'] = b.split('-')
  const ms = BigInt(am) - BigInt(bm)
  if (ms !== 0n) return ms < 0n ? -1 : 1
  const seq = BigInt(as) - BigInt(bs)
  return seq === 0n ? 0 : seq < 0n ? -1 : 1
}

/** The fields of a stream entry, as XREAD returns them (name, value, name, value, ...). */
export interface Entry {
  readonly instance: string
  readonly kind: string
  readonly data: Buffer | undefined
  /** An update's commit sequence number, if its publisher named one. */
  readonly seq: number | undefined
}

export const readEntry = (fields: Buffer[]): Entry => {
  let instance = ''
  let kind = ''
  let data: Buffer | undefined
  let seq: number | undefined
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString('latin1')
    if (name === 'i') instance = fields[i + 1]!.toString('latin1')
    else if (name === 'k') kind = fields[i + 1]!.toString('latin1')
    else if (name === 'd') data = fields[i + 1]!
    else if (name === 's') seq = Number(fields[i + 1]!.toString('latin1'))
  }
  return { instance, kind, data, seq }
}

/** Gives `message` to every handler of `stream`; a handler that throws is logged and the others still hear. */
export const dispatch = (stream: Stream, message: BusMessage, log: Logger): void => {
  for (const handler of stream.handlers) {
    try {
      handler.message(message)
    } catch (error) {
      log.error({ err: error, key: stream.key }, 'redis bus: a handler threw')
    }
  }
}

/** Tells every handler of `stream` that messages were missed, so that its room reloads from storage. */
export const reportGap = (stream: Stream, log: Logger): void => {
  log.info({ key: stream.key }, 'redis bus: messages missed; the room reloads from storage')
  for (const handler of stream.handlers) {
    try {
      handler.gap()
    } catch (error) {
      log.error({ err: error, key: stream.key }, 'redis bus: a gap handler threw')
    }
  }
}
