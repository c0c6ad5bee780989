import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

/**
 * Which instance announced each awareness client of one room, and at which clock, so that the
 * awareness states of an instance that died without saying goodbye can be removed on the others at once
 * instead of after y-protocols' 30 s timeout.
 *
 * An awareness update is `varUint(n)` then n times `varUint(clientID) varUint(clock) varString(stateJSON)`,
 * with state `null` for a removal. The removal built here carries the last clock seen: y-protocols removes
 * a state on a null update of the same clock, and ignores it once the client has announced a newer one
 * (for instance after reconnecting to another instance).
 */
export class Presence {
  readonly #owners = new Map<number, { instance: string, clock: number }>()

  /** Records an awareness update published by `instance`. Ignores bytes it cannot read. */
  record (instance: string, update: Uint8Array): void {
    try {
      const decoder = decoding.createDecoder(update)
      const count = decoding.readVarUint(decoder)
      for (let i = 0; i < count; i++) {
        const clientID = decoding.readVarUint(decoder)
        const clock = decoding.readVarUint(decoder)
        const state = decoding.readVarString(decoder)
        if (state === 'null') this.#owners.delete(clientID)
        else this.#owners.set(clientID, { instance, clock })
      }
    } catch {
      // Malformed awareness is the room's to reject; here it only means nothing is tracked.
    }
  }

  /** Instances that own at least one awareness state. */
  instances (): Set<string> {
    return new Set([...this.#owners.values()].map((owner) => owner.instance))
  }

  /** Forgets every state `instance` announced and returns the awareness update removing them, or null. */
  removeInstance (instance: string): Uint8Array | null {
    const gone: Array<[number, number]> = []
    for (const [clientID, owner] of this.#owners) {
      if (owner.instance === instance) gone.push([clientID, owner.clock])
    }
    if (gone.length === 0) return null
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, gone.length)
    for (const [clientID, clock] of gone) {
      this.#owners.delete(clientID)
      encoding.writeVarUint(encoder, clientID)
      encoding.writeVarUint(encoder, clock)
      encoding.writeVarString(encoder, 'null')
    }
    return encoding.toUint8Array(encoder)
  }
}
