/**
 * How many clients this instance takes: connections counted per instance, per client address and per
 * room, and the client address they are counted by. Sockets and held long polls count alike.
 */
import type { IncomingMessage } from 'node:http'
import { SyncError } from './errors.js'
import { checkNumber } from './option-check.js'

/**
 * The client's address. Behind `trustProxy` proxies (App Engine's load balancer, a reverse proxy) it is
 * the `X-Forwarded-For` entry the outermost trusted proxy added, counting from the right: entries further
 * left were written by the client and prove nothing. With `trustProxy` 0 the header is ignored.
 */
export const clientAddress = (request: Pick<IncomingMessage, 'headers' | 'socket'>, trustProxy: number): string => {
  const direct = request.socket.remoteAddress ?? 'unknown'
  if (trustProxy <= 0) return direct
  const header = request.headers['x-forwarded-for']
  const raw = Array.isArray(header) ? header.join(',') : header
  if (raw === undefined) return direct
  const hops = raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (hops.length === 0) return direct
  return hops[Math.max(0, hops.length - trustProxy)]!
}

export interface ConnectionLimits {
  /** Connections this instance holds at most. */
  readonly maxConnections: number
  /** Connections from one client address (a classroom behind one NAT shares one). */
  readonly maxConnectionsPerIp: number
  /** Connections to one room. */
  readonly maxConnectionsPerRoom: number
}

/** A held slot: call `release` once when the connection ends (or was refused). */
export interface Slot {
  release (): void
}

const bump = (map: Map<string, number>, key: string, by: number): void => {
  const next = (map.get(key) ?? 0) + by
  if (next <= 0) map.delete(key)
  else map.set(key, next)
}

/**
 * Counts connections per instance, per address and per room, and refuses one over any limit with
 * OVERLOADED. A slot is taken before authorization so that a flood of slow handshakes counts too.
 */
export class ConnectionCounter {
  readonly #limits: ConnectionLimits
  readonly #byIp = new Map<string, number>()
  readonly #byRoom = new Map<string, number>()
  #total = 0

  constructor (limits: ConnectionLimits) {
    for (const [name, value] of Object.entries(limits)) checkNumber(name, value, { min: 1 })
    this.#limits = limits
  }

  get total (): number {
    return this.#total
  }

  #free = (ip: string, room: string): void => {
    this.#total--
    bump(this.#byIp, ip, -1)
    bump(this.#byRoom, room, -1)
  }

  /** Takes a slot for a connection from `ip` to `room`, or throws OVERLOADED naming the limit. */
  take (ip: string, room: string): Slot {
    const limits = this.#limits
    if (this.#total >= limits.maxConnections) throw new SyncError('OVERLOADED', 'instance connection limit reached')
    if ((this.#byIp.get(ip) ?? 0) >= limits.maxConnectionsPerIp) throw new SyncError('OVERLOADED', 'too many connections from this address')
    if ((this.#byRoom.get(room) ?? 0) >= limits.maxConnectionsPerRoom) throw new SyncError('OVERLOADED', 'room connection limit reached')
    this.#total++
    bump(this.#byIp, ip, 1)
    bump(this.#byRoom, room, 1)
    return new CountedSlot(this.#free, ip, room)
  }
}

/** A slot is an object, not a closure: an idle server holds one per socket. */
class CountedSlot implements Slot {
  #free: ((ip: string, room: string) => void) | null
  readonly #ip: string
  readonly #room: string

  constructor (free: (ip: string, room: string) => void, ip: string, room: string) {
    this.#free = free
    this.#ip = ip
    this.#room = room
  }

  release (): void {
    const free = this.#free
    this.#free = null
    free?.(this.#ip, this.#room)
  }
}
