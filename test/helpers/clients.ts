import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { waitFor } from './wait.js'

// Every stock provider adds a process 'exit' listener in Node; tests open hundreds of them.
process.setMaxListeners(0)

/** A stock y-websocket client (the provider browsers use), on Node's `ws`. */
export interface Client {
  readonly doc: Y.Doc
  readonly provider: WebsocketProvider
  readonly text: Y.Text
  destroy (): void
}

export const connectClient = (url: string, room: string, options: { params?: Record<string, string>, connect?: boolean, clientID?: number } = {}): Client => {
  const doc = new Y.Doc()
  // Before the provider makes its awareness, which takes the document's id.
  if (options.clientID !== undefined) doc.clientID = options.clientID
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    params: options.params ?? {},
    connect: options.connect ?? true,
    disableBc: true,
  })
  return {
    doc,
    provider,
    text: doc.getText('text'),
    destroy: () => {
      provider.destroy()
      doc.destroy()
    },
  }
}

/**
 * Destroys the client's TCP connection without a close frame, as a dropped network or a platform's
 * connection limit would: the server sees the socket go, and the provider reconnects.
 */
export const dropSocket = (client: Client): void => {
  const ws = client.provider.ws as unknown as { _socket?: { destroy (): void } } | null
  ws?._socket?.destroy()
}

/** As `dropSocket`, for good: the provider does not reconnect. */
export const cutAbruptly = (client: Client): void => {
  client.provider.shouldConnect = false
  dropSocket(client)
}

/** Waits until the client has finished its first sync with the server. */
export const synced = (client: Client, timeoutMs = 10_000): Promise<boolean> =>
  waitFor(() => client.provider.synced, { timeoutMs, message: 'client sync' })

/** Waits until every client's text equals the first one's (and `expected`, if given); returns it. */
export const converged = async (clients: readonly Client[], { expected, timeoutMs = 10_000 }: { expected?: string, timeoutMs?: number } = {}): Promise<string> => {
  await waitFor(() => {
    const first = clients[0]!.text.toString()
    if (expected !== undefined && first !== expected) return false
    return clients.every((c) => c.text.toString() === first)
  }, { timeoutMs, message: `convergence of ${clients.length} clients (texts: ${clients.map((c) => JSON.stringify(c.text.toString().slice(0, 40))).join(', ')})` })
  return clients[0]!.text.toString()
}
