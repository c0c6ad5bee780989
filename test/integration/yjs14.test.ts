import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { connectClient, synced, type Client } from '../helpers/clients.js'
import { deleteKeys, startInstances, storedText, uniquePrefix } from '../helpers/cluster.js'
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../helpers/postgres.js'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js'
import { startServer } from '../helpers/server.js'
import { waitFor } from '../helpers/wait.js'
import { Yjs14Client } from '../helpers/yjs14-client.js'

/**
 * Clients of the next y-websocket line: `@y/websocket` 4 on `@y/y` 14, whose client ids are 53-bit. Each
 * runs in a child process of its own (test/helpers/yjs14-child.ts), so that this process holds Yjs 13
 * documents only; the two meet in the server, and the test compares their texts.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})
const yjs14 = async (): Promise<Yjs14Client> => {
  const client = await Yjs14Client.start()
  cleanups.push(() => client.stop())
  assert.ok(await client.clientID() > 2 ** 32, 'Yjs 14 makes 53-bit client ids')
  return client
}
const yjs13 = (url: string, room: string): Client => {
  const client = connectClient(url, room)
  cleanups.push(() => client.destroy())
  return client
}
const hasText = (client: Client, expected: string, message: string): Promise<boolean> =>
  waitFor(() => client.text.toString() === expected, { message: `${message}: ${JSON.stringify(expected)}` })
const nameOf = (state: unknown): unknown => (state as { user?: { name?: unknown } } | undefined)?.user?.name

/** Waits until each side sees the other's awareness state. */
const awarenessCrosses = async (modern: Yjs14Client, legacy: Client, label: string): Promise<void> => {
  const modernId = await modern.clientID()
  await modern.setAwareness({ user: { name: `fourteen ${label}` } })
  legacy.provider.awareness.setLocalStateField('user', { name: `thirteen ${label}` })
  await waitFor(() => nameOf(legacy.provider.awareness.getStates().get(modernId)) === `fourteen ${label}`,
    { message: 'the Yjs 14 state at the Yjs 13 client' })
  await waitFor(async () => (await modern.awareness()).some(([id, state]) => id === legacy.doc.clientID && nameOf(state) === `thirteen ${label}`),
    { message: 'the Yjs 13 state at the Yjs 14 client' })
}

describe('a Yjs 14 client (@y/y 14, @y/websocket 4)', () => {
  it('converges with a Yjs 13 client both ways over WebSocket, and their awareness crosses both ways', async () => {
    const server = await startServer()
    cleanups.push(() => server.close())
    const modern = await yjs14()
    await modern.connect(server.url, 'both-ways')
    await modern.synced()
    const legacy = yjs13(server.url, 'both-ways')
    await synced(legacy)
    await modern.insert(0, 'from 14;')
    await hasText(legacy, 'from 14;', 'the Yjs 14 edit at the Yjs 13 client')
    legacy.text.insert(legacy.text.length, 'from 13;')
    await modern.hasText('from 14;from 13;')
    await modern.delete(0, 5)
    await hasText(legacy, '14;from 13;', 'the Yjs 14 deletion at the Yjs 13 client')
    await awarenessCrosses(modern, legacy, 'socket')
    assert.deepEqual((await modern.status()).closes, [], 'the Yjs 14 socket was never closed')
  })

  it('converges with a Yjs 13 client over long-polling, awareness included', async () => {
    const server = await startServer()
    cleanups.push(() => server.close())
    const modern = await yjs14()
    await modern.connectPolling(server.http, 'polling')
    await modern.synced()
    const legacy = yjs13(server.url, 'polling')
    await synced(legacy)
    await modern.insert(0, 'polled 14;')
    await hasText(legacy, 'polled 14;', 'the polled Yjs 14 edit at the Yjs 13 client')
    legacy.text.insert(0, 'socket 13;')
    await modern.hasText('socket 13;polled 14;')
    await awarenessCrosses(modern, legacy, 'poll')
    assert.deepEqual((await modern.status()).closes, [], 'no request of the Yjs 14 client was refused')
  })

  describe('against the server process', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'yjs14-'))
    let server: ServerProcess | null = null
    after(async () => {
      await server?.kill('SIGKILL')
      rmSync(dataDir, { recursive: true, force: true })
    })

    it('keeps its edits, over WebSocket and long-polling, through a SIGKILL, and a late Yjs 13 joiner gets them', async () => {
      server = await startServerProcess({ DATA_DIR: dataDir, LOG_LEVEL: 'warn' })
      const { port } = server
      const socket = await yjs14()
      const polling = await yjs14()
      await socket.connect(server.url, 'killed')
      await polling.connectPolling(server.http, 'killed')
      await Promise.all([socket.synced(), polling.synced()])
      const observer = yjs13(server.url, 'killed')
      await synced(observer)
      await socket.insert(0, 'socket;')
      await hasText(observer, 'socket;', 'the socket edit')
      await polling.hasText('socket;')
      await polling.insert(7, 'poll;')
      await hasText(observer, 'socket;poll;', 'the polled edit')
      // Seen by a peer, so committed: the Yjs 14 clients leave, and only the server's storage holds it.
      await socket.disconnect()
      await polling.disconnect()
      observer.destroy()

      assert.equal(await server.kill('SIGKILL'), 'SIGKILL')
      server = await startServerProcess({ DATA_DIR: dataDir, LOG_LEVEL: 'warn' }, { port })
      const late = yjs13(server.url, 'killed')
      await synced(late)
      assert.equal(late.text.toString(), 'socket;poll;', 'a late Yjs 13 joiner gets the Yjs 14 edits')

      // Back again, the Yjs 14 clients edit on and everyone converges.
      await socket.connect(server.url, 'killed')
      await polling.connectPolling(server.http, 'killed')
      await Promise.all([socket.synced(), polling.synced()])
      await socket.insert(0, '>')
      await polling.hasText('>socket;poll;')
      await polling.insert(1, '>')
      await hasText(late, '>>socket;poll;', 'the edits after the restart')
      await socket.hasText('>>socket;poll;')
      await polling.hasText('>>socket;poll;')
      // A refusal is logged as a warning ("... refused"); the start-up notices of an open server are not problems.
      const problems = server.logs.filter((line) => ['WARNING', 'ERROR'].includes(String(line.severity)) && !/ is not set: /.test(String(line.message)))
      assert.deepEqual(problems, [], 'nothing refused or logged as a problem')
    })
  })

  describe('across two server processes on Postgres and Redis', () => {
    const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
    const env = { databaseUrl: TEST_DATABASE_URL, schema: uniqueSchema('yjs14'), redisUrl: REDIS_URL, prefix: uniquePrefix('yjs14') }
    let instances: ServerProcess[] = []
    after(async () => {
      await Promise.all(instances.map((instance) => instance.kill('SIGKILL')))
      await dropSchema(env.schema).catch(() => {})
      await deleteKeys(REDIS_URL, env.prefix).catch(() => {})
    })

    it('syncs Yjs 14 clients (one on a socket, one polling both instances) with Yjs 13 clients on the other instance', async () => {
      instances = await startInstances(env, 2, { LOG_LEVEL: 'warn' })
      const [a, b] = instances as [ServerProcess, ServerProcess]
      const socket = await yjs14()
      const polling = await yjs14()
      await socket.connect(a.url, 'shared')
      await polling.connectPolling([a.http, b.http], 'shared')
      const onB = yjs13(b.url, 'shared')
      await Promise.all([socket.synced(), polling.synced(), synced(onB)])

      await socket.insert(0, 'A14;')
      await hasText(onB, 'A14;', 'the Yjs 14 edit made on A, at B')
      await polling.hasText('A14;')
      await polling.insert(4, 'P14;')
      onB.text.insert(0, 'B13;')
      const expected = 'B13;A14;P14;'
      await hasText(onB, expected, 'every edit at B')
      await socket.hasText(expected)
      await polling.hasText(expected)
      await awarenessCrosses(socket, onB, 'across instances')

      assert.equal(await storedText(env.databaseUrl, env.schema, 'shared'), expected, 'Postgres holds every edit')
      const late = yjs13(a.url, 'shared')
      await synced(late)
      assert.equal(late.text.toString(), expected, 'a late Yjs 13 joiner on A gets them')
      assert.deepEqual((await socket.status()).closes, [])
      assert.deepEqual((await polling.status()).closes, [])
    })
  })
})
