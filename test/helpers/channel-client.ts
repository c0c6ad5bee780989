import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import * as protocol from '../../server/protocol.js'
import type { Channel, ChannelFactory, ChannelKind } from '../../web/channel.js'

/**
 * A minimal y-websocket client over any Channel: what the browser provider does, in Node, for tests.
 * On open it sends sync step 1 and its awareness; it answers step 1 with step 2; it sends its own edits
 * and awareness changes; it reconnects 100 ms after a close unless the code is final (4400-4499).
 */
export interface ChannelClient {
  readonly doc: Y.Doc
  readonly awareness: awarenessProtocol.Awareness
  readonly text: Y.Text
  /** True once a sync step 2 arrived on the current channel. */
  readonly synced: boolean
  /** The kind of the channel in use, or null while disconnected. */
  readonly kind: ChannelKind | null
  readonly opens: number
  readonly closes: ReadonlyArray<{ code: number, reason: string }>
  /** Reasons of permission-denied messages received. */
  readonly denied: readonly string[]
  destroy (): void
}

const REMOTE = Symbol('remote')

export const connectChannelClient = (
  factory: ChannelFactory,
  { serverUrl, room, params = {} }: { serverUrl: string, room: string, params?: Record<string, string> },
): ChannelClient => {
  const doc = new Y.Doc()
  const awareness = new awarenessProtocol.Awareness(doc)
  let channel: Channel | null = null
  let open = false
  let synced = false
  let destroyed = false
  let opens = 0
  let retry: NodeJS.Timeout | null = null
  const closes: Array<{ code: number, reason: string }> = []
  const denied: string[] = []

  const send = (frame: Uint8Array): void => { if (open) channel?.send(frame) }

  const handle = (frame: Uint8Array): void => {
    const decoder = decoding.createDecoder(frame)
    const type = decoding.readVarUint(decoder)
    switch (type) {
      case protocol.MESSAGE_SYNC: {
        const encoder = encoding.createEncoder()
        encoding.writeVarUint(encoder, protocol.MESSAGE_SYNC)
        const subtype = syncProtocol.readSyncMessage(decoder, encoder, doc, REMOTE)
        if (encoding.length(encoder) > 1) send(encoding.toUint8Array(encoder))
        if (subtype === syncProtocol.messageYjsSyncStep2) synced = true
        return
      }
      case protocol.MESSAGE_AWARENESS:
        awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoder), REMOTE)
        return
      case protocol.MESSAGE_AUTH: {
        decoding.readVarUint(decoder)
        denied.push(decoding.readVarString(decoder))
        return
      }
      case protocol.MESSAGE_QUERY_AWARENESS:
        send(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(awareness, [...awareness.states.keys()])))
    }
  }

  const connect = (): void => {
    retry = null
    if (destroyed) return
    const current: Channel = factory({ serverUrl, room, params, doc, awareness }, {
      open: () => {
        open = true
        opens++
        send(protocol.encodeSyncStep1(Y.encodeStateVector(doc)))
        if (awareness.getLocalState() !== null) send(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID])))
      },
      message: (frame) => { if (channel === current) handle(frame) },
      close: (code, reason) => {
        closes.push({ code, reason })
        if (channel !== current) return
        channel = null
        open = false
        synced = false
        if (!destroyed && !(code >= 4400 && code < 4500)) retry = setTimeout(connect, 100)
      },
    })
    channel = current
  }

  doc.on('update', (update: Uint8Array, origin: unknown) => {
    if (origin !== REMOTE) send(protocol.encodeSyncUpdate(update))
  })
  awareness.on('update', ({ added, updated, removed }: { added: number[], updated: number[], removed: number[] }, origin: unknown) => {
    if (origin !== 'local') return
    send(protocol.encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(awareness, added.concat(updated, removed))))
  })
  connect()

  return {
    doc,
    awareness,
    text: doc.getText('text'),
    get synced () { return synced },
    get kind () { return open && channel !== null ? channel.kind : null },
    get opens () { return opens },
    closes,
    denied,
    destroy: () => {
      destroyed = true
      if (retry !== null) clearTimeout(retry)
      channel?.close(1000, 'destroyed')
      channel = null
      awareness.destroy()
      doc.destroy()
    },
  }
}
