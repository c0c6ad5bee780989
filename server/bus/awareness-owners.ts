import { encodeAwarenessEntries, NULL_STATE, readAwarenessEntriesOrNull } from '../awareness-codec.js'

/**
 * The bus's side of a room's awareness: which instance announced each awareness state of the room, and at
 * which clock, so that the states of an instance that died without saying goodbye can be removed on the
 * others at once instead of after y-protocols' 30 s timeout.
 *
 * The removal built here carries the last clock seen: y-protocols removes a state on a null update of the
 * same clock, and ignores it once the client has announced a newer one (for instance after reconnecting to
 * another instance).
 */
export class AwarenessOwners {
  readonly #owners = new Map<number, { instance: string, clock: number }>()

  /** Records an awareness update published by `instance`. Ignores bytes it cannot read. */
  record (instance: string, update: Uint8Array): void {
    // Malformed awareness is the room's to reject; here it only means nothing is tracked.
    for (const [client, clock, state] of readAwarenessEntriesOrNull(update) ?? []) {
      if (state === NULL_STATE) this.#owners.delete(client)
      else this.#owners.set(client, { instance, clock })
    }
  }

  /** Instances that own at least one awareness state. */
  instances (): Set<string> {
    return new Set([...this.#owners.values()].map((owner) => owner.instance))
  }

  /** Forgets every state `instance` announced and returns the awareness update removing them, or null. */
  removeInstance (instance: string): Uint8Array | null {
    const gone: Array<[number, number, string]> = []
    for (const [client, owner] of this.#owners) {
      if (owner.instance === instance) gone.push([client, owner.clock, NULL_STATE])
    }
    if (gone.length === 0) return null
    for (const [client] of gone) this.#owners.delete(client)
    return encodeAwarenessEntries(gone)
  }
}
