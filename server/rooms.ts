import type { Logger } from 'pino'
import { SyncError } from './errors.js'
import { Room, type RoomContext } from './room.js'

export interface RoomsOptions {
  /** How long a room with no holders stays loaded before it is flushed, compacted and freed. */
  readonly idleMs: number
  /**
   * Rooms held in memory at most. At the limit, opening another unloads the least recently used idle
   * room first; when every room is in use, it is refused with OVERLOADED. Default: no limit.
   */
  readonly maxRooms?: number
}

/**
 * Every loaded room, by name. `acquire` creates a room synchronously, so two clients joining a cold room
 * at the same moment share one document and one load. A room whose last holder left unloads after a grace
 * period; a room acquired while an older copy is still unloading waits for that unload to finish before
 * it reads storage, so it sees everything the old copy committed. The map is kept in order of last use
 * (acquire or release), so the first idle room in it is the least recently used one.
 */
export class Rooms {
  readonly #ctx: RoomContext
  readonly #options: RoomsOptions
  readonly #log: Logger
  readonly #rooms = new Map<string, Room>()
  readonly #unloading = new Map<string, Promise<void>>()

  constructor (ctx: RoomContext, options: RoomsOptions) {
    this.#ctx = ctx
    this.#options = options
    this.#log = ctx.log
  }

  get size (): number {
    return this.#rooms.size
  }

  get (name: string): Room | undefined {
    return this.#rooms.get(name)
  }

  names (): IterableIterator<string> {
    return this.#rooms.keys()
  }

  /** Whether `acquire(name)` would succeed now: the room is loaded, or there is (or can be made) space. */
  canAcquire (name: string): boolean {
    if (this.#rooms.has(name) || this.#rooms.size < (this.#options.maxRooms ?? Infinity)) return true
    return this.#leastRecentlyUsedIdle() !== undefined
  }

  #leastRecentlyUsedIdle (): Room | undefined {
    for (const room of this.#rooms.values()) if (room.holds === 0) return room
    return undefined
  }

  #touch (room: Room): void {
    this.#rooms.delete(room.name)
    this.#rooms.set(room.name, room)
  }

  /**
   * Gets or creates the room and holds it in memory until `release`. Throws OVERLOADED when `maxRooms`
   * rooms are loaded and all of them are in use.
   */
  acquire (name: string): Room {
    let room = this.#rooms.get(name)
    if (room !== undefined) this.#touch(room)
    else {
      if (this.#rooms.size >= (this.#options.maxRooms ?? Infinity)) {
        const idle = this.#leastRecentlyUsedIdle()
        if (idle === undefined) throw new SyncError('OVERLOADED', 'too many rooms loaded')
        if (idle.idleTimer !== null) clearTimeout(idle.idleTimer)
        idle.idleTimer = null
        this.#log.debug({ room: idle.name }, 'unloading the least recently used idle room to make space')
        void this.unload(idle)
      }
      room = new Room(name, this.#ctx, this.#unloading.get(name))
      this.#rooms.set(name, room)
      const created = room
      created.loaded.catch((error: unknown) => {
        this.#log.error({ room: name, err: error }, 'room failed to load')
        // Forget it so that the next join tries again.
        if (this.#rooms.get(name) === created) this.#rooms.delete(name)
        created.destroy()
      })
    }
    room.holds++
    if (room.idleTimer !== null) {
      clearTimeout(room.idleTimer)
      room.idleTimer = null
    }
    return room
  }

  /**
   * `acquire`, then waits for the room's load: STORAGE_UNAVAILABLE, the room released, if it failed.
   * Release the room after use.
   */
  async open (name: string): Promise<Room> {
    const room = this.acquire(name)
    try {
      await room.loaded
    } catch (error) {
      this.release(room)
      throw new SyncError('STORAGE_UNAVAILABLE', `the room could not be loaded: ${(error as Error).message}`)
    }
    return room
  }

  /** Holds the room loaded while `use` runs (see `open`), and releases it after. */
  async use<T> (name: string, use: (room: Room) => T | Promise<T>): Promise<T> {
    const room = await this.open(name)
    try {
      return await use(room)
    } finally {
      this.release(room)
    }
  }

  release (room: Room): void {
    room.holds--
    if (room.holds > 0 || this.#rooms.get(room.name) !== room) return
    this.#touch(room)
    room.idleTimer = setTimeout(() => {
      room.idleTimer = null
      if (room.holds === 0) void this.unload(room)
    }, this.#options.idleMs)
    room.idleTimer.unref()
  }

  async unload (room: Room): Promise<void> {
    if (this.#rooms.get(room.name) !== room) return
    this.#rooms.delete(room.name)
    const previous = this.#unloading.get(room.name) ?? Promise.resolve()
    const done = previous.then(() => room.close()).catch((error: unknown) => {
      this.#log.error({ room: room.name, err: error }, 'room failed to unload cleanly')
      room.destroy()
    })
    this.#unloading.set(room.name, done)
    await done
    if (this.#unloading.get(room.name) === done) this.#unloading.delete(room.name)
  }

  /** Unloads every room (after flushing each). */
  async closeAll (): Promise<void> {
    const rooms = [...this.#rooms.values()]
    for (const room of rooms) {
      if (room.idleTimer !== null) clearTimeout(room.idleTimer)
    }
    await Promise.all(rooms.map((room) => this.unload(room)))
    await Promise.all(this.#unloading.values())
  }
}
