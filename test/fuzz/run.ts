/**
 * `npm run fuzz -- [--frames N] [--duration 10m] [--seed S] [--connections K] [--poll-sends P]`: the fuzz scenario for as
 * long as you like. Prints progress and a JSON report; exits 1 if a check failed.
 */
import { parseDuration } from '../../server/tokens.js'
import { runScenario } from './scenario.js'

const args = new Map<string, string>()
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i += 2) {
  const flag = argv[i]!
  if (!['--frames', '--duration', '--seed', '--connections', '--poll-sends'].includes(flag) || argv[i + 1] === undefined) {
    process.stderr.write('usage: npm run fuzz -- [--frames 1000000] [--duration 10m] [--seed 1] [--connections 6] [--poll-sends 150]\n')
    process.exit(2)
  }
  args.set(flag.slice(2), argv[i + 1]!)
}
const duration = args.get('duration')
const frames = Number(args.get('frames') ?? (duration === undefined ? 1_000_000 : Number.MAX_SAFE_INTEGER))
const seed = Number(args.get('seed') ?? Date.now() % 1_000_000)
const connections = Number(args.get('connections') ?? 6)
const pollSends = Number(args.get('poll-sends') ?? 150)
process.stdout.write(`fuzz: seed ${seed}, ${frames === Number.MAX_SAFE_INTEGER ? 'no frame limit' : `${frames} frames`}${duration === undefined ? '' : `, ${duration}`}, ${connections} connections\n`)
const started = Date.now()
runScenario({
  seed,
  frames,
  connections,
  pollSends,
  ...(duration === undefined ? {} : { durationMs: parseDuration(duration) * 1000 }),
  progress: (line) => process.stdout.write(`  ${((Date.now() - started) / 1000).toFixed(0)}s ${line}\n`),
}).then((report) => {
  process.stdout.write(`${JSON.stringify({ ...report, errors: report.errors.length, firstErrors: report.errors.slice(0, 5) }, null, 2)}\n`)
  process.exit(report.alive && report.errors.length === 0 && report.roundTrips ? 0 : 1)
}, (error: unknown) => {
  process.stderr.write(`fuzz failed (seed ${seed}): ${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
