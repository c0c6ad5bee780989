import WebSocket from 'ws'
import { once } from './wait.js'

/** A bare WebSocket that records every frame and the close it got: for feeding the server bad input. */
export interface RawSocket {
  readonly ws: WebSocket
  readonly frames: Uint8Array[]
  /** Resolves with the close code and reason once the socket closed. */
  readonly closed: Promise<{ code: number, reason: string }>
  send (frame: Uint8Array | Buffer): void
}

export const openRaw = async (url: string, room: string, headers: Record<string, string> = {}): Promise<RawSocket> => {
  const ws = new WebSocket(`${url}/${room}`, { headers })
  const frames: Uint8Array[] = []
  ws.on('message', (data: Buffer) => frames.push(new Uint8Array(data)))
  const closed = new Promise<{ code: number, reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))
  })
  ws.on('error', () => {})
  await Promise.race([once(ws, 'open'), closed])
  return { ws, frames, closed, send: (frame) => { if (ws.readyState === WebSocket.OPEN) ws.send(frame) } }
}

/** The socket's close, or a failure if it stays open `timeoutMs`. */
export const closedWithin = (raw: RawSocket, timeoutMs = 5000): Promise<{ code: number, reason: string }> => Promise.race([
  raw.closed,
  new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`the socket is still open after ${timeoutMs} ms`)), timeoutMs).unref()),
])
