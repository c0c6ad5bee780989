import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { connectClient, synced, type Client } from '../helpers/clients.js'
import WebSocket from 'ws'
import { startServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

describe('graceful shutdown', () => {
  it('fails readiness, refuses upgrades, and closes every socket with 1012 spread over the window', async () => {
    const server = await startServer({ shutdownSpreadMs: 600 })
    const clients: Client[] = []
    try {
      assert.equal((await fetch(`${server.http}/readiness_check`)).status, 200)
      for (let i = 0; i < 6; i++) clients.push(connectClient(server.url, 'drain'))
      await Promise.all(clients.map((c) => synced(c)))
      const closes: Array<{ code: number, at: number }> = []
      for (const c of clients) {
        // The first close of each client: later ones are its reconnects, refused while draining.
        let first = true
        c.provider.on('connection-close', (event: { code: number } | null) => {
          if (event !== null && first) closes.push({ code: event.code, at: performance.now() })
          first = false
        })
      }
      const started = performance.now()
      const drained = server.server.drain()
      const readiness = await fetch(`${server.http}/readiness_check`)
      assert.equal(readiness.status, 503)
      assert.equal((await fetch(`${server.http}/liveness_check`)).status, 200, 'still alive while draining')
      const refused = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${server.url}/drain`)
        ws.on('unexpected-response', (_request, response) => { resolve(response.statusCode ?? 0); ws.terminate() })
        ws.on('open', () => { resolve(101); ws.close() })
        ws.on('error', () => {})
      })
      assert.equal(refused, 503, 'upgrade while draining')
      await drained
      await waitFor(() => closes.length >= 6, { message: 'six closes' })
      const first = closes
      assert.deepEqual(first.map((c) => c.code), Array(6).fill(1012))
      const spread = Math.max(...first.map((c) => c.at)) - Math.min(...first.map((c) => c.at))
      console.log(`6 sockets closed with 1012 over ${spread.toFixed(0)} ms (window 600 ms), drain took ${(performance.now() - started).toFixed(0)} ms`)
      assert.ok(spread >= 300, `closes spread over ${spread} ms`)
    } finally {
      for (const c of clients) c.destroy()
      await server.close()
    }
  })
})
