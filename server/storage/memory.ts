import {
  byRoom, CLAIM_WINDOW, claimsCollide, mergeClaims, mergeToSnapshot,
  type AppendEntry, type Claim, type Storage, type StoredRoom,
} from './storage.js'

interface MemoryRoom {
  snapshot: { data: Uint8Array, seq: number } | null
  readonly log: Array<{ data: Uint8Array, seq: number }>
  seq: number
  /** The claims of the latest CLAIM_WINDOW commits. */
  recent: Array<Claim & { seq: number }>
}

/**
 * Keeps everything in this process: for tests and for embedders that persist elsewhere. Several servers in
 * one process may share one, as instances share Postgres: it checks claims and tracks commits the same way.
 */
export class MemoryStorage implements Storage {
  readonly #rooms = new Map<string, MemoryRoom>()

  #room (name: string): MemoryRoom {
    let room = this.#rooms.get(name)
    if (room === undefined) this.#rooms.set(name, room = { snapshot: null, log: [], seq: 0, recent: [] })
    return room
  }

  async load (name: string, after = 0): Promise<StoredRoom> {
    const room = this.#rooms.get(name)
    if (room === undefined) return { updates: [], logRows: 0, seq: 0 }
    const whole = after === 0 || (room.snapshot !== null && room.snapshot.seq > after)
    const log = whole ? room.log : room.log.filter((row) => row.seq > after)
    const updates = log.map((row) => row.data)
    if (whole && room.snapshot !== null) updates.unshift(room.snapshot.data)
    return { updates, logRows: log.length, seq: room.seq }
  }

  async append (entries: readonly AppendEntry[]): Promise<ReadonlyMap<string, number | null>> {
    const result = new Map<string, number | null>()
    for (const [name, list] of byRoom(entries)) {
      const room = this.#room(name)
      const claims = mergeClaims(list)
      const after = list[0]!.after
      if (after !== undefined && (after < room.seq - CLAIM_WINDOW || claimsCollide(room.recent, after, claims))) {
        result.set(name, null)
        continue
      }
      const seq = ++room.seq
      for (const { update } of list) room.log.push({ data: update.slice(), seq })
      const recent = room.recent.filter((old) => old.seq > seq - CLAIM_WINDOW)
      // A client's claim that continues its recent one replaces it (see CLAIM_WINDOW).
      const continued = (old: Claim): Claim | undefined => claims.find((claim) => claim.client === old.client && claim.from === old.to)
      room.recent = [
        ...recent.filter((old) => continued(old) === undefined),
        ...claims.map((claim) => ({ ...claim, from: recent.find((old) => old.client === claim.client && old.to === claim.from)?.from ?? claim.from, seq })),
      ]
      result.set(name, seq)
    }
    return result
  }

  async compact (name: string): Promise<void> {
    const room = this.#rooms.get(name)
    if (room === undefined || room.log.length === 0) return
    const read = room.log.length
    const rows = room.log.map((row) => row.data)
    const seq = room.log.reduce((max, row) => Math.max(max, row.seq), room.snapshot?.seq ?? 0)
    room.snapshot = { data: mergeToSnapshot(room.snapshot === null ? rows : [room.snapshot.data, ...rows]), seq }
    room.log.splice(0, read)
  }

  async has (name: string): Promise<boolean> {
    const room = this.#rooms.get(name)
    return room !== undefined && (room.snapshot !== null || room.log.length > 0)
  }

  async heads (rooms: readonly string[]): Promise<ReadonlyMap<string, number>> {
    return new Map(rooms.map((name) => [name, this.#rooms.get(name)?.seq ?? 0]))
  }

  async check (): Promise<void> {}
  async close (): Promise<void> {}
}
