import * as prng from 'lib0/prng'

/**
 * The faults a chaos run injects, drawn one after another from a seeded generator: the same seed gives
 * the same sequence of faults (kinds, targets, durations, pauses), whatever the timing of the run.
 */
export const FAULT_KINDS = [
  'kill', // SIGKILL an instance, restart it after `downMs`
  'term', // SIGTERM an instance (it drains), restart it once it has exited
  'redis-restart', // stop Redis gracefully, start it again with its data after `downMs`
  'redis-wipe', // kill Redis, start it again empty after `downMs`
  'postgres-restart', // stop Postgres (fast shutdown), start it again after `downMs`
  'latency', // add `latencyMs` on the way from instances to `service` for `downMs`
  'drop', // close every connection from instances to `service`
  'redis-cut', // one instance cannot reach Redis (but reaches Postgres) for `downMs`
] as const

export type FaultKind = typeof FAULT_KINDS[number]

export interface Fault {
  readonly kind: FaultKind
  /** Instance index, or null for all instances (service-wide faults, or latency/drop for everyone). */
  readonly instance: number | null
  readonly service: 'redis' | 'postgres' | null
  /** How long the fault lasts (down time, cut, latency); 0 for instant faults. */
  readonly downMs: number
  readonly latencyMs: number
  /** Pause before the fault, after the previous one has healed (or began, when `overlaps`). */
  readonly pauseMs: number
  /**
   * Starts while the previous faults may still be on (at most two at once, never two on one thing):
   * an instance killed while Redis is away, Postgres stopped while an instance restarts.
   */
  readonly overlaps: boolean
}

export const parseFaultKinds = (list: string): FaultKind[] => {
  const kinds = list.split(',').map((k) => k.trim()).filter((k) => k !== '')
  for (const kind of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(kind)) throw new RangeError(`unknown fault "${kind}"; known: ${FAULT_KINDS.join(', ')}`)
  }
  if (kinds.length === 0) throw new RangeError('--faults names no fault')
  return kinds as FaultKind[]
}

/** Draws the next fault. `instances` is the number of instances. */
export const drawFault = (gen: prng.PRNG, kinds: readonly FaultKind[], instances: number): Fault => {
  const kind = prng.oneOf(gen, kinds as FaultKind[])
  const pauseMs = prng.int32(gen, 500, 3000)
  const one = prng.int32(gen, 0, instances - 1)
  const everyone = prng.bool(gen)
  const service = prng.bool(gen) ? 'redis' : 'postgres'
  const downMs = prng.int32(gen, 200, 3000)
  const latencyMs = prng.int32(gen, 20, 400)
  const overlaps = prng.int32(gen, 0, 2) === 0
  const fault = ((): Omit<Fault, 'overlaps'> => {
  switch (kind) {
    case 'kill': return { kind, instance: one, service: null, downMs, latencyMs: 0, pauseMs }
    case 'term': return { kind, instance: one, service: null, downMs: 0, latencyMs: 0, pauseMs }
    case 'redis-restart':
    case 'redis-wipe': return { kind, instance: null, service: 'redis', downMs, latencyMs: 0, pauseMs }
    case 'postgres-restart': return { kind, instance: null, service: 'postgres', downMs, latencyMs: 0, pauseMs }
    case 'latency': return { kind, instance: everyone ? null : one, service, downMs: downMs * 2, latencyMs, pauseMs }
    case 'drop': return { kind, instance: everyone ? null : one, service, downMs: 0, latencyMs: 0, pauseMs }
    case 'redis-cut': return { kind, instance: one, service: 'redis', downMs: downMs * 2, latencyMs: 0, pauseMs }
  }
  })()
  return { ...fault, overlaps }
}

/** What a fault acts on: two faults that share one never run at once. */
export const resourcesOf = (fault: Fault, instances: number): string[] => {
  const each = fault.instance === null ? Array.from({ length: instances }, (_, i) => i) : [fault.instance]
  switch (fault.kind) {
    case 'kill':
    case 'term': return [`instance ${fault.instance}`]
    case 'redis-restart':
    case 'redis-wipe': return ['redis']
    case 'postgres-restart': return ['postgres']
    case 'latency':
    case 'drop':
    case 'redis-cut': return each.map((i) => `${fault.service} proxy ${i}`)
  }
}

/** One line describing a fault, for the run's log and report. */
export const describeFault = (fault: Fault): string => `${fault.overlaps ? '(overlapping) ' : ''}${describe(fault)}`

const describe = (fault: Fault): string => {
  const who = fault.instance === null ? 'all instances' : `instance ${fault.instance + 1}`
  switch (fault.kind) {
    case 'kill': return `SIGKILL ${who}, restarted after ${fault.downMs} ms`
    case 'term': return `SIGTERM ${who}, restarted once drained`
    case 'redis-restart': return `Redis stopped for ${fault.downMs} ms, restarted with its data`
    case 'redis-wipe': return `Redis killed for ${fault.downMs} ms, restarted empty`
    case 'postgres-restart': return `Postgres stopped for ${fault.downMs} ms`
    case 'latency': return `+${fault.latencyMs} ms latency ${who} -> ${fault.service} for ${fault.downMs} ms`
    case 'drop': return `connections ${who} -> ${fault.service} closed`
    case 'redis-cut': return `${who} cut off from Redis for ${fault.downMs} ms (reaches Postgres)`
  }
}
