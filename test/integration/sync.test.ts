import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import * as protocol from '../../server/protocol.js'
import { connectClient, converged, cutAbruptly, synced, type Client } from '../helpers/clients.js'
import { openRaw } from '../helpers/raw-socket.js'
import { startServer, type TestServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'

describe('stock y-websocket clients', () => {
  let server: TestServer
  const clients: Client[] = []
  const client = (room: string): Client => {
    const c = connectClient(server.url, room)
    clients.push(c)
    return c
  }

  before(async () => { server = await startServer({ pingIntervalMs: 300 }) })
  after(async () => {
    for (const c of clients) c.destroy()
    await server.close()
  })

  it('converge both ways', async () => {
    const a = client('both-ways')
    const b = client('both-ways')
    await Promise.all([synced(a), synced(b)])
    a.text.insert(0, 'from a. ')
    await converged([a, b], { expected: 'from a. ' })
    b.text.insert(b.text.length, 'from b.')
    await converged([a, b], { expected: 'from a. from b.' })
  })

  it('give a late joiner the full state', async () => {
    const a = client('late')
    await synced(a)
    for (let i = 0; i < 100; i++) a.text.insert(a.text.length, `${i} `)
    a.doc.getMap('meta').set('title', 'late joiner')
    const expected = a.text.toString()
    // The late joiner must get everything, so wait until the server holds it.
    await waitFor(() => server.server.loadedRoom('late')?.doc.getText('text').toString() === expected, { message: 'server state' })
    const late = client('late')
    await synced(late)
    assert.equal(late.text.toString(), expected)
    assert.equal(late.doc.getMap('meta').get('title'), 'late joiner')
  })

  it('keep rooms isolated', async () => {
    const a = client('isolated-1')
    const b = client('isolated-2')
    await Promise.all([synced(a), synced(b)])
    a.text.insert(0, 'only in room 1')
    b.text.insert(0, 'only in room 2')
    const c = client('isolated-1')
    await converged([a, c], { expected: 'only in room 1' })
    assert.equal(b.text.toString(), 'only in room 2')
  })

  it('echo an update to its sender', async () => {
    const raw = await openRaw(server.url, 'echo')
    await waitFor(() => raw.frames.length >= 1, { message: 'sync step 1' })
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'echo me')
    const update = Y.encodeStateAsUpdate(doc)
    raw.send(protocol.encodeSyncUpdate(update))
    const echo = await waitFor(() => raw.frames.map((f) => protocol.decodeMessage(f)).find((m) => m.type === 'sync-update'), { message: 'echo' })
    const check = new Y.Doc()
    if (echo.type === 'sync-update') Y.applyUpdate(check, echo.update)
    assert.equal(check.getText('text').toString(), 'echo me')
    raw.ws.close()
  })

  it('send sync step 1 first, then the room\'s awareness states', async () => {
    const a = client('handshake')
    await synced(a)
    a.provider.awareness.setLocalStateField('user', { name: 'A' })
    await waitFor(() => server.server.loadedRoom('handshake')?.awareness.states.size === 1, { message: 'server awareness' })
    const raw = await openRaw(server.url, 'handshake')
    await waitFor(() => raw.frames.length >= 2, { message: 'two frames' })
    const [first, second] = raw.frames.map((f) => protocol.decodeMessage(f))
    assert.equal(first!.type, 'sync-step1')
    assert.equal(second!.type, 'awareness')
    raw.send(protocol.encodeQueryAwareness())
    await waitFor(() => raw.frames.length >= 3, { message: 'query awareness answer' })
    assert.equal(protocol.decodeMessage(raw.frames[2]!).type, 'awareness')
    raw.ws.close()
  })

  it('show a peer\'s awareness to the others and remove it when its socket is cut', async () => {
    const a = client('awareness')
    const b = client('awareness')
    await Promise.all([synced(a), synced(b)])
    a.provider.awareness.setLocalStateField('user', { name: 'Ada' })
    const aId = a.doc.clientID
    await waitFor(() => (b.provider.awareness.getStates().get(aId) as { user?: { name: string } } | undefined)?.user?.name === 'Ada', { message: 'awareness at b' })
    // Abrupt: the TCP connection is destroyed, no close frame, no awareness removal from the client.
    const started = performance.now()
    cutAbruptly(a)
    await waitFor(() => !b.provider.awareness.getStates().has(aId), { message: 'awareness removal at b' })
    console.log(`awareness removed at the other peer ${(performance.now() - started).toFixed(0)} ms after the socket was destroyed`)
  })

  it('show a stock client\'s awareness to the others again as soon as it reconnects, not at its renewal 15 s later, and remove it at once when it drops for good', async () => {
    const a = client('revival')
    const b = client('revival')
    await Promise.all([synced(a), synced(b)])
    const name = (): string | undefined => (b.provider.awareness.getStates().get(a.doc.clientID) as { user?: { name: string } } | undefined)?.user?.name
    a.provider.awareness.setLocalStateField('user', { name: 'Ada' })
    await waitFor(() => name() === 'Ada', { message: 'awareness at b' })
    // The server removes a's state when its socket closes, with a clock above the one a keeps.
    a.provider.disconnect()
    await waitFor(() => name() === undefined, { message: 'awareness removal at b' })
    a.provider.connect()
    // Well inside the 15 s after which y-protocols renews a's state by itself.
    await waitFor(() => name() === 'Ada', { timeoutMs: 3000, message: 'a\'s state back at b' })
    // a took the raised clock from the server's echo: its next change is newer, and reaches b.
    a.provider.awareness.setLocalStateField('user', { name: 'Ada Lovelace' })
    await waitFor(() => name() === 'Ada Lovelace', { timeoutMs: 3000, message: 'a\'s next change at b' })
    // The state is the reconnected socket's: when it drops for good, b sees the state go at once, not
    // when y-protocols times it out 30 s later.
    cutAbruptly(a)
    await waitFor(() => name() === undefined, { timeoutMs: 3000, message: 'a\'s state removed when its socket drops for good' })
  })

  it('do not bring back a state that was removed when another client\'s echo of it arrives afterwards', async () => {
    const a = client('echo-after-close')
    const b = client('echo-after-close')
    await Promise.all([synced(a), synced(b)])
    const room = server.server.loadedRoom('echo-after-close')!
    // A stock client sends every awareness change it applies back to the server, its own or not. a moves
    // its cursor and its socket drops at once: b's echo of that change reaches the server after the
    // server removed a's state.
    a.provider.awareness.setLocalStateField('user', { name: 'Ada' })
    cutAbruptly(a)
    await waitFor(() => room.peers.size === 1, { message: 'the server closed a\'s socket' })
    // b's messages are handled in order: once its next edit is echoed, its echo of a's state was handled.
    b.text.insert(0, 'after ')
    await waitFor(() => room.doc.getText('text').toString().startsWith('after '), { message: 'b\'s edit at the server' })
    await waitFor(() => b.provider.awareness.getStates().get(a.doc.clientID) === undefined, { message: 'a\'s state gone at b' })
    assert.equal(room.awareness.states.has(a.doc.clientID), false, 'a\'s state stays removed at the server')
  })

  it('keep a change a client makes right after announcing its state, before it hears the state the server raised', async () => {
    const observer = client('raised-echo')
    await synced(observer)
    // A client as y-websocket's: its awareness, every change it applies sent to the server (its own or not).
    const raw = await openRaw(server.url, 'raised-echo')
    const own = new awarenessProtocol.Awareness(new Y.Doc())
    own.on('update', ({ added, updated, removed }: { added: number[], updated: number[], removed: number[] }) => {
      raw.send(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(own, added.concat(updated, removed))))
    })
    raw.ws.on('message', (data: Buffer) => {
      const message = protocol.decodeMessage(new Uint8Array(data))
      if (message.type === 'awareness') awarenessProtocol.applyAwarenessUpdate(own, message.update, 'server')
    })
    try {
      // It announces its state (the server has not seen it: it raises the clock), and changes it before
      // the server's answer arrives.
      raw.send(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(own, [own.clientID])))
      own.setLocalStateField('user', 'late')
      const name = (): unknown => (observer.provider.awareness.getStates().get(own.clientID) as { user?: string } | undefined)?.user
      await waitFor(() => name() === 'late', { message: 'the change at the other client' })
      assert.deepEqual(own.getLocalState(), { user: 'late' }, 'the client kept its change')
    } finally {
      own.destroy()
      raw.ws.close()
    }
  })

  it('terminate a peer that stops answering pings and remove its awareness within the ping bound', async () => {
    const a = client('silent')
    const b = client('silent')
    await Promise.all([synced(a), synced(b)])
    a.provider.awareness.setLocalStateField('user', { name: 'Silent' })
    const aId = a.doc.clientID
    await waitFor(() => b.provider.awareness.getStates().has(aId), { message: 'awareness at b' })
    // Half-open: the client stops reading, so it answers no ping, but nothing closes the connection.
    const socket = (a.provider.ws as unknown as { _socket: import('node:net').Socket })._socket
    a.provider.shouldConnect = false
    clearInterval((a.provider as unknown as { _checkInterval: NodeJS.Timeout })._checkInterval)
    clearInterval((a.provider.awareness as unknown as { _checkInterval: NodeJS.Timeout })._checkInterval)
    socket.pause()
    const started = performance.now()
    await waitFor(() => !b.provider.awareness.getStates().has(aId), { timeoutMs: 5000, message: 'awareness removal after missed pongs' })
    const elapsed = performance.now() - started
    console.log(`unresponsive peer removed after ${elapsed.toFixed(0)} ms (ping interval 300 ms, bound 600 ms + scheduling)`)
    assert.ok(elapsed < 2000, `removed after ${elapsed} ms`)
    socket.destroy()
  })
})
