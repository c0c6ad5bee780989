#!/usr/bin/env node
/**
 * `npm run token -- --room NAME --mode write --ttl 1h [--secret S] [--sub WHO]`: prints a signed token
 * for local use. A program of its own (like main.ts), so it may read AUTH_SECRET from the environment.
 */
import { parseDuration, signToken, type Mode } from './tokens.js'

const USAGE = 'usage: npm run token -- --room NAME [--mode read|write] [--ttl 1h] [--secret S] [--sub WHO]\n' +
  '  --room    exact room name, or a prefix ending in * (quote it in the shell)\n' +
  '  --mode    read or write (default write)\n' +
  '  --ttl     lifetime: 90, 45s, 30m, 1h, 7d (default 1h)\n' +
  '  --secret  HS256 secret (default: $AUTH_SECRET)\n' +
  '  --sub     who the token is for (optional, shows in logs)\n'

const parseArgs = (argv: readonly string[]): Map<string, string> => {
  const args = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') {
      args.set('help', 'true')
      continue
    }
    const eq = arg.indexOf('=')
    const [flag, inline] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined]
    if (!['--room', '--mode', '--ttl', '--secret', '--sub'].includes(flag)) throw new RangeError(`unknown option "${arg}"`)
    const value = inline ?? argv[++i]
    if (value === undefined) throw new RangeError(`${flag} needs a value`)
    args.set(flag.slice(2), value)
  }
  return args
}

const run = async (): Promise<void> => {
  const args = parseArgs(process.argv.slice(2))
  if (args.has('help')) {
    process.stdout.write(USAGE)
    return
  }
  const room = args.get('room')
  if (room === undefined) throw new RangeError('--room is required')
  const secret = args.get('secret') ?? process.env.AUTH_SECRET
  if (secret === undefined || secret === '') throw new RangeError('no secret: set AUTH_SECRET or pass --secret')
  const sub = args.get('sub')
  const token = await signToken({
    secret,
    room,
    mode: (args.get('mode') ?? 'write') as Mode,
    ttlSeconds: parseDuration(args.get('ttl') ?? '1h'),
    ...(sub === undefined ? {} : { subject: sub }),
  })
  process.stdout.write(`${token}\n`)
}

run().catch((error: unknown) => {
  process.stderr.write(`token: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`)
  process.exit(2)
})
