import type { Bus, BusHandler, BusMessage, BusSubscription } from '../../server/bus/bus.js'

/**
 * An in-process stand-in for the Redis bus: one hub, one `Bus` per instance. Messages reach every other
 * instance subscribed to the room, in publish order, asynchronously (as over a network), never the
 * publisher itself. `kill()` on an instance's bus cuts it off at once, as a process death would.
 */
export class MemoryBusHub {
  readonly #subscribers = new Map<string, Set<{ bus: MemoryBus, handler: BusHandler }>>()

  connect (): MemoryBus {
    return new MemoryBus(this.#subscribers)
  }
}

export class MemoryBus implements Bus {
  readonly #subscribers: Map<string, Set<{ bus: MemoryBus, handler: BusHandler }>>
  #dead = false

  constructor (subscribers: Map<string, Set<{ bus: MemoryBus, handler: BusHandler }>>) {
    this.#subscribers = subscribers
  }

  async subscribe (room: string, handler: BusHandler): Promise<BusSubscription> {
    if (this.#dead) throw new Error('bus closed')
    let set = this.#subscribers.get(room)
    if (set === undefined) this.#subscribers.set(room, set = new Set())
    const entry = { bus: this, handler }
    set.add(entry)
    return { close: async () => { set.delete(entry) } }
  }

  async publish (room: string, message: BusMessage): Promise<void> {
    if (this.#dead) throw new Error('bus closed')
    const copy: BusMessage = { kind: message.kind, data: message.data.slice() }
    const targets = [...(this.#subscribers.get(room) ?? [])].filter((entry) => entry.bus !== this)
    setImmediate(() => {
      for (const { bus, handler } of targets) if (!bus.#dead) handler.message(copy)
    })
  }

  /** Stops this instance's bus at once: it neither sends nor receives anything more. */
  kill (): void {
    this.#dead = true
    for (const set of this.#subscribers.values()) {
      for (const entry of set) if (entry.bus === this) set.delete(entry)
    }
  }

  async close (): Promise<void> {
    this.kill()
  }
}
