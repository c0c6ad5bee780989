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

/** Writers that keep inserting tokens until stopped; returns every token each wrote. */
const burst = (writers: Client[], random: () => number): { stop: () => void, written: string[][] } => {
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
      try {
        await Promise.all(clients.map((c) => synced(c)))
        const load = burst(writers, random)
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
        for (const c of clients) c.destroy()
      }
    }
    console.log(`20 kills: ${seenTotal} tokens seen by clients before the kills, all present exactly once after restart`)
    assert.ok(seenTotal > 0)
  })

  it('keeps every edit exactly once across a SIGTERM during a 5-writer burst, and clients reconnect on their own', async () => {
    const dataDir = tempDir()
    const random = rng(7)
    const server = await start({ DATA_DIR: dataDir, SHUTDOWN_SPREAD_MS: '500' })
    const writers = Array.from({ length: 5 }, () => connectClient(server.url, 'sigterm'))
    try {
      await Promise.all(writers.map((c) => synced(c)))
      const load = burst(writers, random)
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
      for (const w of writers) w.destroy()
    }
  })
})
