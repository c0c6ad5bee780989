import WebSocket from 'ws'
import type { Channel, ChannelFactory } from '../../web/channel.js'

/** A WebSocket ChannelFactory on Node's `ws`, for tests of channel combinators. */
export const wsChannel = (): ChannelFactory => (target, events) => {
  const query = new URLSearchParams(target.params).toString()
  const ws = new WebSocket(`${target.serverUrl}/${target.room}${query === '' ? '' : `?${query}`}`)
  ws.binaryType = 'nodebuffer'
  let closed = false
  ws.on('open', () => events.open())
  ws.on('message', (data: Buffer) => events.message(new Uint8Array(data)))
  ws.on('error', () => {})
  ws.on('close', (code, reason) => {
    if (closed) return
    closed = true
    events.close(code === 1005 ? 1000 : code, reason.toString())
  })
  const channel: Channel = {
    kind: 'websocket',
    send: (frame) => { if (ws.readyState === WebSocket.OPEN) ws.send(frame) },
    close: (code, reason) => {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate()
      // ws refuses reserved codes (1006 and such) in a close frame.
      else ws.close(code === 1000 || (code !== undefined && code >= 3000 && code < 5000) ? code : 1000, reason)
    },
  }
  return channel
}
