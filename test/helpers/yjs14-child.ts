/**
 * A Yjs 14 client (`@y/y` with `@y/websocket`, or a long-polling loop) in a process of its own, driven by
 * `yjs14-client.ts` over IPC. Yjs 13 and Yjs 14 each check, on import, that they are loaded once, and a
 * document of one cannot be read by the other: so the Yjs 14 client lives here, and nothing in this
 * process imports `yjs`. Each request `{ id, command, args }` is answered `{ id, result }` or
 * `{ id, error }`.
 */
import * as Y from '@y/y'
import { WebsocketProvider } from '@y/websocket'
import * as awarenessProtocol from '@y/protocols/awareness'
import * as syncProtocol from '@y/protocols/sync'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'

const MESSAGE_SYNC = 0
const MESSAGE_AWARENESS = 1

/** What a Yjs 14 client exposes to the test, whatever carries it. */
interface Connection {
  readonly synced: boolean
  /** Close codes (sockets) or `x-close-code`s of refused requests (polling), in order. */
  readonly closes: number[]
  destroy (): void
}

const doc = new Y.Doc()
const awareness = new awarenessProtocol.Awareness(doc)
const text = doc.get('text')
let connection: Connection | null = null

type ProviderOptions = NonNullable<ConstructorParameters<typeof WebsocketProvider>[3]>

const connectSocket = (url: string, room: string, params: Record<string, string>): Connection => {
  const provider = new WebsocketProvider(url, room, doc, {
    awareness,
    params,
    disableBc: true,
    WebSocketPolyfill: WebSocket as unknown as ProviderOptions['WebSocketPolyfill'],
  })
  const closes: number[] = []
  provider.on('connection-close', (event) => { if (event !== null) closes.push(event.code) })
  return {
    get synced () { return provider.synced },
    closes,
    destroy: () => provider.destroy(),
  }
}

/** A client's pause before it retries a failed request (not a test's wait). */
const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 250))

const frames = (list: readonly Uint8Array[]): Uint8Array => {
  const encoder = encoding.createEncoder()
  for (const frame of list) encoding.writeVarUint8Array(encoder, frame)
  return encoding.toUint8Array(encoder)
}

/**
 * The long-polling wire (README, "Long-polling fallback") spoken by hand with Yjs 14's own encodings:
 * sends carry the client's frames, polls its snapshot and awareness clocks. One send in flight at a time;
 * requests go to each of `bases` (`http://host:port`) in turn.
 */
const connectPolling = (bases: readonly string[], room: string, params: Record<string, string>): Connection => {
  const query = new URLSearchParams(params).toString()
  // Each request goes to the next instance in turn, as behind a balancer without affinity.
  let turn = 0
  const endpoint = (op: string): string => `${bases[turn++ % bases.length]}/poll/${room}?op=${op}${query === '' ? '' : `&${query}`}`
  const closes: number[] = []
  let synced = false
  let open = true
  const outbox: Uint8Array[] = []
  let sending = false
  const controller = new AbortController()

  const receive = (body: Uint8Array): void => {
    const decoder = decoding.createDecoder(body)
    while (decoding.hasContent(decoder)) {
      const frame = decoding.createDecoder(decoding.readVarUint8Array(decoder))
      const type = decoding.readVarUint(frame)
      if (type === MESSAGE_SYNC) {
        const reply = encoding.createEncoder()
        encoding.writeVarUint(reply, MESSAGE_SYNC)
        const kind = syncProtocol.readSyncMessage(frame, reply, doc, 'server')
        if (kind === syncProtocol.messageYjsSyncStep2) synced = true
        if (encoding.length(reply) > 1) send(encoding.toUint8Array(reply))
      } else if (type === MESSAGE_AWARENESS) {
        awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(frame), 'server')
      }
    }
  }
  const post = async (op: string, body: Uint8Array): Promise<Uint8Array | null> => {
    const response = await fetch(endpoint(op), { method: 'POST', body, signal: controller.signal })
    const bytes = new Uint8Array(await response.arrayBuffer())
    if (response.ok) return bytes
    closes.push(Number(response.headers.get('x-close-code')))
    if (response.status < 500) open = false
    return null
  }
  const send = (frame: Uint8Array): void => {
    outbox.push(frame)
    void flush()
  }
  const flush = async (): Promise<void> => {
    if (sending) return
    sending = true
    try {
      while (open && outbox.length > 0) {
        const batch = outbox.splice(0)
        const answer = await post('send', frames(batch)).catch(() => null)
        if (answer === null) {
          outbox.unshift(...batch)
          await pause()
        } else receive(answer)
      }
    } finally {
      sending = false
    }
  }
  const poll = async (): Promise<void> => {
    while (open) {
      const request = encoding.createEncoder()
      encoding.writeVarUint8Array(request, Y.encodeSnapshot(Y.snapshot(doc)))
      encoding.writeVarUint(request, awareness.meta.size)
      for (const [client, meta] of awareness.meta) {
        encoding.writeVarUint(request, client)
        encoding.writeVarUint(request, meta.clock)
        encoding.writeVarUint(request, awareness.states.has(client) ? 1 : 0)
      }
      const answer = await post('poll', encoding.toUint8Array(request)).catch(() => null)
      if (answer !== null) receive(answer)
      else await pause()
    }
  }
  const onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === 'server') return
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_SYNC)
    syncProtocol.writeUpdate(encoder, update)
    send(encoding.toUint8Array(encoder))
  }
  const onAwareness = ({ added, updated, removed }: { added: number[], updated: number[], removed: number[] }, origin: unknown): void => {
    if (origin === 'server') return
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_AWARENESS)
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, [...added, ...updated, ...removed]))
    send(encoding.toUint8Array(encoder))
  }
  doc.on('update', onUpdate)
  awareness.on('update', onAwareness)
  const step1 = encoding.createEncoder()
  encoding.writeVarUint(step1, MESSAGE_SYNC)
  syncProtocol.writeSyncStep1(step1, doc)
  send(encoding.toUint8Array(step1))
  if (awareness.getLocalState() !== null) onAwareness({ added: [doc.clientID], updated: [], removed: [] }, 'local')
  void poll()
  return {
    get synced () { return synced },
    closes,
    destroy: () => {
      open = false
      controller.abort()
      doc.off('update', onUpdate)
      awareness.off('update', onAwareness)
    },
  }
}

type Args = Record<string, any>
const commands: Record<string, (args: Args) => unknown> = {
  connect: ({ url, room, params = {} }) => { connection = connectSocket(url, room, params) },
  connectPolling: ({ bases, room, params = {} }) => { connection = connectPolling(bases, room, params) },
  disconnect: () => { connection?.destroy(); connection = null },
  clientID: () => doc.clientID,
  insert: ({ index, value }) => { text.insert(index, value) },
  delete: ({ index, length }) => { text.delete(index, length) },
  text: () => text.toString(),
  status: () => ({ synced: connection?.synced ?? false, closes: connection?.closes ?? [] }),
  setAwareness: ({ state }) => { awareness.setLocalState(state) },
  awareness: () => [...awareness.getStates()],
  update: () => Y.encodeStateAsUpdate(doc),
}

process.on('message', async ({ id, command, args }: { id: number, command: string, args: Args }) => {
  try {
    const run = commands[command]
    if (run === undefined) throw new Error(`unknown command ${command}`)
    process.send!({ id, result: await run(args) })
  } catch (error) {
    process.send!({ id, error: (error as Error).stack ?? String(error) })
  }
})
process.on('disconnect', () => process.exit(0))
process.send!({ id: 0, result: 'ready' })
