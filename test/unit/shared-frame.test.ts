import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { WebSocket, WebSocketServer } from 'ws'
import { frameBinary, SharedFrame } from '../../server/transport/shared-frame.js'
import { waitFor } from '../helpers/wait.js'

test('frameBinary writes the header RFC 6455 gives for each payload length class', () => {
  for (const length of [0, 1, 125, 126, 65_535, 65_536, 70_000]) {
    const payload = new Uint8Array(length).map((_, i) => i % 251)
    const wire = frameBinary(payload)
    assert.equal(wire[0], 0x82, 'final binary frame')
    let offset = 2
    let declared = wire[1]!
    assert.equal(declared & 0x80, 0, 'a server frame is not masked')
    if (declared === 126) { declared = wire.readUInt16BE(2); offset = 4 } else if (declared === 127) { declared = Number(wire.readBigUInt64BE(2)); offset = 10 }
    assert.equal(declared, length)
    assert.equal(offset, length < 126 ? 2 : length < 65_536 ? 4 : 10)
    assert.deepEqual(wire.subarray(offset), Buffer.from(payload))
  }
})

test('payloads sent through SharedFrame to many sockets arrive whole, in order with what ws sends itself, and each on the sockets it was sent to', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
  await once(wss, 'listening')
  const { port } = wss.address() as { port: number }
  const accepted: WebSocket[] = []
  wss.on('connection', (ws) => accepted.push(ws))
  const clients = Array.from({ length: 5 }, () => new WebSocket(`ws://127.0.0.1:${port}`))
  const received = clients.map(() => [] as Buffer[])
  clients.forEach((client, i) => client.on('message', (data: Buffer) => received[i]!.push(data)))
  try {
    await Promise.all(clients.map((client) => once(client, 'open')))
    await waitFor(() => accepted.length === clients.length, { timeoutMs: 5000, message: 'every socket accepted' })
    const frames = new SharedFrame()
    const big = new Uint8Array(100_000).fill(7)
    const expected: Uint8Array[] = []
    for (const [i, payload] of [Uint8Array.of(1), big, Uint8Array.of(2, 3), Uint8Array.of()].entries()) {
      expected.push(payload)
      for (const ws of accepted) frames.send(ws, payload)
      // ws's own frames (here an explicit send) stay in order with the shared ones.
      const own = Uint8Array.of(100 + i)
      expected.push(own)
      for (const ws of accepted) ws.send(own)
    }
    await waitFor(() => received.every((list) => list.length === expected.length), { timeoutMs: 5000, message: 'every message on every socket' })
    for (const list of received) assert.deepEqual(list.map((data) => [...data]), expected.map((data) => [...data]))

    // Two payloads alternating over the sockets (joins of two rooms, interleaved), each sent twice: every
    // socket gets the payload it was handed, though each payload's frame is remembered across the other's.
    const rooms = [new Uint8Array(3_000).fill(4), new Uint8Array(70_000).fill(5)]
    for (let round = 0; round < 2; round++) accepted.forEach((ws, i) => frames.send(ws, rooms[(i + round) % 2]!))
    await waitFor(() => received.every((list) => list.length === expected.length + 2), { timeoutMs: 5000, message: 'both alternating payloads on every socket' })
    received.forEach((list, i) => {
      assert.deepEqual([...list.at(-2)!], [...rooms[i % 2]!], `socket ${i}, first round`)
      assert.deepEqual([...list.at(-1)!], [...rooms[(i + 1) % 2]!], `socket ${i}, second round`)
    })
  } finally {
    for (const client of clients) client.terminate()
    wss.close()
  }
})
