/**
 * Idle long-polling clients held by one instance: what they cost the server in memory and CPU.
 *
 *   npm run build && node dist/bench/longpoll-idle.js [--clients 500] [--rooms 50] [--seconds 40] [--no-awareness]
 *
 * Starts the real server (`dist/server/main.js`, SQLite in a temporary folder) as a child process,
 * connects `clients` long-polling clients spread over `rooms` rooms (each with an awareness state, as an
 * open editor has, which y-protocols renews every 15 s), waits until every one holds a poll, and then
 * measures the server process (from /proc: Linux only) over `seconds` of idleness: resident memory and
 * CPU time. Last, one edit per room, and how long until every client has it. `--no-awareness` leaves
 * the clients without awareness state: then nothing but the hold timeout (25 s) wakes a poll.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pollChannel } from '../web/poll-channel.js'
import { connectChannelClient, type ChannelClient } from '../test/helpers/channel-client.js'
import { startServerProcess } from '../test/helpers/server-process.js'
import { waitFor } from '../test/helpers/wait.js'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  const value = i < 0 ? fallback : Number(process.argv[i + 1])
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`--${name} must be a positive number`)
  return value
}

const clientCount = arg('clients', 500)
const roomCount = arg('rooms', 50)
const seconds = arg('seconds', 40)
const awareness = !process.argv.includes('--no-awareness')

const TICKS = 100 // USER_HZ on Linux
const sample = (pid: number): { rssMiB: number, cpuSeconds: number } => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN)
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { rssMiB: rssKiB / 1024, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS }
}

const main = async (): Promise<void> => {
  // Node's fetch opens as many sockets per origin as it needs: one per held poll, plus sends.
  const dir = mkdtempSync(join(tmpdir(), 'longpoll-bench-'))
  const server = await startServerProcess({ DATA_DIR: dir, ROOM_IDLE_MS: '60000', MAX_POLL_REQUESTS_PER_SECOND: '1000000' })
  const pid = server.child.pid!
  const clients: ChannelClient[] = []
  try {
    const base = sample(pid)
    const t0 = performance.now()
    for (let i = 0; i < clientCount; i++) {
      const client = connectChannelClient(pollChannel(), { serverUrl: server.url, room: `room-${i % roomCount}` })
      if (awareness) client.awareness.setLocalStateField('user', { name: `client ${i}`, color: '#30bced' })
      else client.awareness.setLocalState(null)
      clients.push(client)
    }
    await waitFor(() => clients.every((c) => c.synced), { timeoutMs: 120_000, intervalMs: 100, message: 'every client synced' })
    const connectMs = performance.now() - t0
    const settled = sample(pid)
    const start = settled
    const started = performance.now()
    let maxRss = start.rssMiB
    while (performance.now() - started < seconds * 1000) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      maxRss = Math.max(maxRss, sample(pid).rssMiB)
    }
    const end = sample(pid)
    const idleCpu = end.cpuSeconds - start.cpuSeconds
    const window = (performance.now() - started) / 1000

    const beforeEdit = sample(pid)
    const edited = performance.now()
    for (let r = 0; r < roomCount; r++) clients[r]!.text.insert(0, 'wake up ')
    await waitFor(() => clients.every((c) => c.text.toString().startsWith('wake up ')), { timeoutMs: 60_000, intervalMs: 5, message: 'every client has the edit' })
    const fanOutMs = performance.now() - edited
    const fanOutCpu = sample(pid).cpuSeconds - beforeEdit.cpuSeconds

    const line = (label: string, value: string): void => { process.stdout.write(`${label.padEnd(44)} ${value}\n`) }
    line('clients / rooms / awareness', `${clientCount} / ${roomCount} / ${awareness ? 'on (renewed every 15 s)' : 'off'}`)
    line('all connected and synced in', `${(connectMs / 1000).toFixed(1)} s`)
    line('server RSS before clients', `${base.rssMiB.toFixed(1)} MiB`)
    line('server RSS with clients idle (end, max)', `${end.rssMiB.toFixed(1)} MiB, ${maxRss.toFixed(1)} MiB`)
    line('server RSS per idle client', `${(((end.rssMiB - base.rssMiB) * 1024) / clientCount).toFixed(1)} KiB`)
    line('server CPU while connecting', `${(settled.cpuSeconds - base.cpuSeconds).toFixed(2)} s`)
    line(`server CPU over ${window.toFixed(0)} s idle`, `${idleCpu.toFixed(2)} s (${((idleCpu / window) * 100).toFixed(1)} % of one core)`)
    line('one edit per room reaching every client', `${fanOutMs.toFixed(0)} ms (server CPU in it: ${(fanOutCpu * 1000).toFixed(0)} ms)`)
  } finally {
    for (const client of clients) client.destroy()
    await server.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
