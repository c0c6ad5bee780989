import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js'
import { assertExactlyOnce, insertToken, receivedTokens, rng } from '../helpers/tokens.js'
import { waitFor } from '../helpers/wait.js'

const dirs: string[] = []
const servers: ServerProcess[] = []
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'durability-'))
  dirs.push(dir)
  return dir
}
const start = async (env: Record<string, string>, port?: number): Promise<ServerProcess> => {
  const server = await startServerProcess({ LOG_LEVEL: 'warn', ...env }, { port })
  servers.push(server)
  return server
}
after(async () => {
  for (const s of servers) await s.kill('SIGKILL')
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

interface Burst {
  /** Stops the writers (again in `finally`: a failed test must not leave them writing). */
  stop (): void
  readonly written: string[][]
}

/** Writers that keep inserting tokens until stopped; returns every token each wrote. */
const burst = (writers: Client[], random: () => number): Burst => {
  const written: string[][] = writers.map(() => [])
  const timers = writers.map((client, w) => setInterval(() => {
    written[w]!.push(insertToken(client, w, written[w]!.length, random))
  }, 2))
  return { stop: () => timers.forEach(clearInterval), written }
}

describe('durability', () => {
  it('loses nothing any client saw and duplicates nothing when the server is killed with SIGKILL, 20 times at random moments of a 5-writer burst', async () => {
    const dataDir = tempDir()
    const random = rng(20261128)
    let seenTotal = 0
    for (let round = 0; round < 20; round++) {
      const room = `kill-${round}`
      const server = await start({ DATA_DIR: dataDir })
      const writers = Array.from({ length: 5 }, () => connectClient(server.url, room))
      const observer = connectClient(server.url, room)
      const clients = [...writers, observer]
      let stopBurst = (): void => {}
      try {
        await Promise.all(clients.map((c) => synced(c)))
        const load = burst(writers, random)
        stopBurst = load.stop
        await waitFor(() => observer.text.length > 0, { message: 'first echo' })
        const delay = 20 + random() * 300
        await new Promise((resolve) => setTimeout(resolve, delay)) // the random moment of the kill, not a synchronization
        await server.kill('SIGKILL')
        load.stop()
        // Everything a client received came from the server, which broadcasts only what it committed.
        const seen = new Set(receivedTokens(observer.text.toString(), null))
        writers.forEach((w, i) => receivedTokens(w.text.toString(), i).forEach((t) => seen.add(t)))
        for (const c of clients) c.destroy()
        seenTotal += seen.size

        const restarted = await start({ DATA_DIR: dataDir })
        const fresh = connectClient(restarted.url, room)
        try {
          await synced(fresh)
          assertExactlyOnce(fresh.text.toString(), seen, `round ${round}`)
        } finally {
          fresh.destroy()
          await restarted.kill('SIGKILL')
        }
      } finally {
        stopBurst()
        for (const c of clients) c.destroy()
      }
    }
    console.log(`20 kills: ${seenTotal} tokens seen by clients before the kills, all present exactly once after restart`)
    assert.ok(seenTotal > 0)
  })

  it('keeps every edit exactly once across a SIGTERM during a 5-writer burst; clients reconnect on their own and see each other\'s cursors again at once', async () => {
    const dataDir = tempDir()
    const random = rng(7)
    const server = await start({ DATA_DIR: dataDir, SHUTDOWN_SPREAD_MS: '500' })
    const writers = Array.from({ length: 5 }, () => connectClient(server.url, 'sigterm'))
    let stopBurst = (): void => {}
    try {
      await Promise.all(writers.map((c) => synced(c)))
      writers.forEach((w, i) => w.provider.awareness.setLocalStateField('user', { name: `writer ${i}` }))
      /** Whether every writer shows every other writer's state. */
      const allSeen = (): boolean => writers.every((w) => writers.every((other, i) =>
        (w.provider.awareness.getStates().get(other.doc.clientID) as { user?: { name: string } } | undefined)?.user?.name === `writer ${i}`))
      await waitFor(allSeen, { message: 'every writer\'s state at every writer' })
      const load = burst(writers, random)
      stopBurst = load.stop
      await waitFor(() => writers[0]!.text.length > 200, { message: 'burst under way' })
      const stopped = performance.now()
      server.child.kill('SIGTERM')
      const code = await server.exited
      const drainMs = performance.now() - stopped
      assert.equal(code, 0, 'exit code after SIGTERM')
      assert.ok(server.logs.some((l) => String(l.message).startsWith('draining')), 'logged the drain')
      const restarted = await start({ DATA_DIR: dataDir }, server.port)
      const back = performance.now()
      await waitFor(() => writers.every((w) => w.provider.wsconnected && w.provider.synced), { timeoutMs: 15_000, message: 'clients reconnected' })
      const reconnectMs = performance.now() - back
      // Stock clients announce their states with the clocks the others hold already; the restarted server
      // raises them, so the cursors are back well before the clients' renewal 15 s later.
      await waitFor(allSeen, { timeoutMs: 3000, message: 'every writer\'s state at every writer after the restart' })
      const before = load.written.flat().length
      await waitFor(() => load.written.flat().length > before + 100, { message: 'edits after the restart' })
      load.stop()
      const all = load.written.flat()
      const text = await converged(writers, { timeoutMs: 15_000 })
      assertExactlyOnce(text, all, 'clients after SIGTERM and restart')
      const fresh = connectClient(restarted.url, 'sigterm')
      await synced(fresh)
      await waitFor(() => fresh.text.toString() === text, { message: 'stored state equals the clients\' state' })
      fresh.destroy()
      console.log(`SIGTERM: drained and exited 0 in ${drainMs.toFixed(0)} ms; 5 clients reconnected ${reconnectMs.toFixed(0)} ms after restart; ${all.length} edits present exactly once`)
    } finally {
      stopBurst()
      for (const w of writers) w.destroy()
    }
  })
})
