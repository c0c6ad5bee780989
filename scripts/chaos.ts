#!/usr/bin/env node
/**
 * `npm run chaos -- --minutes N --seed S [--faults kill,term,...] [--goal-ms 5000]`
 *
 * Three instances on a throw-away Redis and Postgres (free loopback ports, temporary folders), socket and
 * long-poll clients that hop between them through a no-affinity proxy while they write, and a fault
 * schedule drawn from the seed (see chaos-schedule.ts). Prints the faults injected, the edits made, lost
 * and duplicated, and the time to converge after the last fault; exits 1 when any edit seen by a client
 * is lost or duplicated somewhere, or when convergence took longer than the goal.
 */
import { runChaos, formatReport } from './chaos-run.js'
import { FAULT_KINDS, parseFaultKinds, type FaultKind } from './chaos-schedule.js'

const usage = `usage: npm run chaos -- --minutes N --seed S [--faults ${FAULT_KINDS.join(',')}] [--goal-ms 5000]\n`

const parse = (argv: readonly string[]): { minutes: number, seed: number, faults: FaultKind[], goalMs: number } => {
  let minutes = 1
  let seed = 1
  let faults = [...FAULT_KINDS]
  let goalMs = 5000
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = argv[++i]
    if (value === undefined) throw new RangeError(`${arg} needs a value`)
    if (arg === '--minutes') minutes = Number(value)
    else if (arg === '--seed') seed = Number(value)
    else if (arg === '--faults') faults = parseFaultKinds(value)
    else if (arg === '--goal-ms') goalMs = Number(value)
    else throw new RangeError(`unknown option ${arg}`)
  }
  if (!Number.isFinite(minutes) || minutes <= 0) throw new RangeError('--minutes must be a positive number')
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError('--seed must be a whole number >= 0')
  if (!Number.isFinite(goalMs) || goalMs <= 0) throw new RangeError('--goal-ms must be a positive number')
  return { minutes, seed, faults, goalMs }
}

let options: ReturnType<typeof parse>
try {
  options = parse(process.argv.slice(2))
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n${usage}`)
  process.exit(2)
}
// Ctrl-C ends the run early but still stops every process and removes the temporary folders.
const stop = new AbortController()
process.once('SIGINT', () => stop.abort())
process.once('SIGTERM', () => stop.abort())
const report = await runChaos({
  signal: stop.signal,
  seed: options.seed,
  durationMs: options.minutes * 60_000,
  faults: options.faults,
  convergeGoalMs: options.goalMs,
  log: (line) => process.stdout.write(`${line}\n`),
})
process.stdout.write(`\n${formatReport(report)}\n`)
process.exit(report.ok ? 0 : 1)
