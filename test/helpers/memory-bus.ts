import type { Bus, BusHandler, BusMessage, BusSubscription } from '../../server/bus/bus.js'

type Subscribers = Map<string, Set<{ bus: MemoryBus, handler: BusHandler }>>

/**
 * An in-process stand-in for the Redis bus: one hub, one `Bus` per instance. Messages reach every other
 * instance subscribed to the room, in publish order, asynchronously (as over a network), never the
 * publisher itself. `kill()` on an instance's bus cuts it off at once, as a process death would; `hold()`
 * on the hub delays every delivery until `release()`, as a slow network would, to stage races.
 */
export class MemoryBusHub {
  readonly subscribers: Subscribers = new Map()
  #held: Array<() => void> | null = null

  connect (): MemoryBus {
    return new MemoryBus(this)
  }

  /** Runs `delivery` soon, or on `release()` while held. */
  deliver (delivery: () => void): void {
    if (this.#held !== null) this.#held.push(delivery)
    else setImmediate(delivery)
  }

  /** From now on messages wait in the hub, in order, until `release()`. */
  hold (): void {
    this.#held ??= []
  }

  /** Delivers what waited, in publish order, before returning; later messages flow as usual. */
  release (): number {
    const held = this.#held ?? []
    this.#held = null
    for (const delivery of held) delivery()
    return held.length
  }
}

export class MemoryBus implements Bus {
  readonly #hub: MemoryBusHub
  #dead = false

  constructor (hub: MemoryBusHub) {
    this.#hub = hub
  }

  async subscribe (room: string, handler: BusHandler): Promise<BusSubscription> {
    if (this.#dead) throw new Error('bus closed')
    const subscribers = this.#hub.subscribers
    let set = subscribers.get(room)
    if (set === undefined) subscribers.set(room, set = new Set())
    const entry = { bus: this, handler }
    set.add(entry)
    return { close: async () => { set.delete(entry) } }
  }

  async publish (room: string, message: BusMessage): Promise<void> {
    if (this.#dead) throw new Error('bus closed')
    const copy: BusMessage = { ...message, data: message.data.slice() }
    const targets = [...(this.#hub.subscribers.get(room) ?? [])].filter((entry) => entry.bus !== this)
    this.#hub.deliver(() => {
      for (const { bus, handler } of targets) if (!bus.#dead) handler.message(copy)
    })
  }

  /** Stops this instance's bus at once: it neither sends nor receives anything more. */
  kill (): void {
    this.#dead = true
    for (const set of this.#hub.subscribers.values()) {
      for (const entry of set) if (entry.bus === this) set.delete(entry)
    }
  }

  async close (): Promise<void> {
    this.kill()
  }
}
