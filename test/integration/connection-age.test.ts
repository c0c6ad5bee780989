import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { connectClient, converged, synced, type Client } from '../helpers/clients.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { assertExactlyOnce, insertToken, rng } from '../helpers/tokens.js'
import { waitFor } from '../helpers/wait.js'

describe('connection age limit', () => {
  let server: TestServer
  const clients: Client[] = []
  before(async () => { server = await startServer({ maxConnectionAgeMs: 2000 }) })
  after(async () => {
    for (const c of clients) c.destroy()
    await server.close()
  })

  it('closes sockets with 4000 after the age, and two clients editing for 10 s through the closes end identical', async () => {
    const random = rng(42)
    const a = connectClient(server.url, 'age')
    const b = connectClient(server.url, 'age')
    clients.push(a, b)
    const closes: number[] = []
    for (const c of [a, b]) c.provider.on('connection-close', (event: { code: number } | null) => { if (event !== null) closes.push(event.code) })
    await Promise.all([synced(a), synced(b)])
    const written: string[] = []
    let n = 0
    const typing = setInterval(() => {
      written.push(insertToken(a, 0, n, random))
      written.push(insertToken(b, 1, n, random))
      n++
    }, 20)
    const started = Date.now()
    try {
      await waitFor(() => Date.now() - started >= 10_000, { timeoutMs: 12_000, intervalMs: 100, message: '10 s of typing' })
    } finally {
      clearInterval(typing)
    }
    const text = await converged([a, b], { timeoutMs: 15_000 })
    assertExactlyOnce(text, written, 'text after forced closes')
    assert.equal(text.split(';').length - 1, written.length)
    const ageCloses = closes.filter((code) => code === 4000).length
    console.log(`10 s, 2 clients, ${written.length} edits, ${ageCloses} closes with 4000 (codes seen: ${[...new Set(closes)].join(', ')})`)
    assert.ok(ageCloses >= 6, `expected several 4000 closes, saw ${ageCloses}`)
  })
})
