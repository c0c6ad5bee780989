import { Writable } from 'node:stream'
import { createLogger, type Logger } from '../../server/log.js'

/** A logger at `trace` whose lines are kept, for tests that check what the server writes. */
export interface CapturedLog {
  readonly logger: Logger
  readonly lines: string[]
}

export const captureLog = (): CapturedLog => {
  const lines: string[] = []
  const destination = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(line)
      callback()
    },
  })
  return { logger: createLogger('trace', destination), lines }
}

/** Every piece of `secret` at least `min` characters long that occurs in `text`. */
export const piecesIn = (text: string, secret: string, min = 8): string[] => {
  const found: string[] = []
  for (let i = 0; i + min <= secret.length; i++) {
    const piece = secret.slice(i, i + min)
    if (text.includes(piece)) found.push(piece)
  }
  return found
}
