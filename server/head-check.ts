import type { Logger } from 'pino'
import type { Rooms } from './rooms.js'

/** How often an instance reads the latest commit of every room it has loaded. */
export const HEAD_CHECK_MS = 500

/**
 * The periodic check that makes a lost bus message harmless even in a room that goes quiet right after
 * it: every HEAD_CHECK_MS, one query reads storage's latest commit of every loaded room, and a room that
 * lacks one reads it from storage once the grace period has passed (see `CommitSequence`). It needs
 * neither Redis nor the instance that made the commit, so an update committed anywhere reaches every
 * instance that has the room loaded within HEAD_CHECK_MS + CATCH_UP_GRACE_MS and a read, whatever the bus
 * lost.
 */
export class HeadCheck {
  readonly #timer: NodeJS.Timeout
  #running = false
  /** Told once per outage: while the database is away, the check fails twice a second. */
  #failing = false

  constructor (rooms: Rooms, heads: (rooms: readonly string[]) => Promise<ReadonlyMap<string, number>>, log: Logger, intervalMs = HEAD_CHECK_MS) {
    this.#timer = setInterval(() => {
      // A slow database is not queried again before it answered.
      if (this.#running || rooms.size === 0) return
      this.#running = true
      heads([...rooms.names()]).then((latest) => {
        this.#failing = false
        for (const [name, seq] of latest) rooms.get(name)?.observeHead(seq)
      }, (error: unknown) => {
        if (!this.#failing) log.warn({ err: error }, 'reading the rooms\' latest commits failed; trying again every check')
        this.#failing = true
      }).finally(() => { this.#running = false })
    }, intervalMs)
    this.#timer.unref()
  }

  close (): void {
    clearInterval(this.#timer)
  }
}
