#!/usr/bin/env node
/**
 * `npm run cluster`: three instances on one Postgres and one Redis, behind a round-robin proxy without
 * session affinity, so every reconnect may land on another instance. Point y-websocket clients at
 * ws://localhost:8080/<room> and kill instances (their pids are printed) to watch clients move.
 *
 * DATABASE_URL and REDIS_URL default to the local services; PORT (8080) is the proxy's, the instances
 * listen on the three ports after it. Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RoundRobinProxy } from './round-robin-proxy.js'

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'server', 'main.js')
const port = Number(process.env.PORT ?? 8080)
const env = {
  ...process.env,
  DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  HOST: '127.0.0.1',
}
const children: ChildProcess[] = []
const backends = [1, 2, 3].map((n) => ({ host: '127.0.0.1', port: port + n }))

for (const [i, backend] of backends.entries()) {
  const child = spawn(process.execPath, [main], { env: { ...env, PORT: String(backend.port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  const tag = `[instance ${i + 1} :${backend.port}]`
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line !== '') process.stdout.write(`${tag} ${line}\n`)
    })
  }
  child.on('exit', (code, signal) => process.stdout.write(`${tag} exited (${code ?? signal})\n`))
  process.stdout.write(`${tag} pid ${child.pid}\n`)
}

const proxy = new RoundRobinProxy(backends)
await proxy.listen(port, '127.0.0.1')
process.stdout.write(`round-robin proxy on http://localhost:${port} -> ${backends.map((b) => b.port).join(', ')}\n`)

let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  for (const child of children) child.kill('SIGTERM')
  void Promise.all(children.map((child) => child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', resolve)))).then(() => proxy.close()).then(() => process.exit(0))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
