import type { Bus, BusHandler, BusMessage, BusSubscription } from '../../server/bus/bus.js'

/**
 * An in-process bus between SyncServers of one test: each `bus()` is one instance's end. Messages reach
 * every other end subscribed to the room, a turn of the event loop later, stamped with `sentAt` as the
 * Redis bus stamps them from the stream id.
 */
export class LoopbackHub {
  readonly #ends = new Set<Map<string, Set<BusHandler>>>()

  bus (): Bus {
    const subscriptions = new Map<string, Set<BusHandler>>()
    this.#ends.add(subscriptions)
    return {
      subscribe: async (room, handler): Promise<BusSubscription> => {
        let handlers = subscriptions.get(room)
        if (handlers === undefined) subscriptions.set(room, handlers = new Set())
        handlers.add(handler)
        return { close: async () => { handlers.delete(handler) } }
      },
      publish: async (room, message): Promise<void> => {
        const stamped: BusMessage = { kind: message.kind, data: message.data.slice(), sentAt: Date.now() }
        for (const end of this.#ends) {
          if (end === subscriptions) continue
          for (const handler of end.get(room) ?? []) setImmediate(() => handler.message(stamped))
        }
      },
      close: async () => { this.#ends.delete(subscriptions) },
    }
  }
}
