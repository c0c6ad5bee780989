import { connect, type Socket } from 'node:net'

/** A request written by hand on a TCP socket: for bodies sent slowly, partly, or not at all. */
export interface RawRequest {
  readonly socket: Socket
  /** Resolves with the status code of the answer, as soon as its status line arrives. */
  readonly status: Promise<number>
  write (bytes: Uint8Array | string): void
  destroy (): void
}

export const rawRequest = async (port: number, method: string, path: string, headers: Record<string, string | number>): Promise<RawRequest> => {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.on('error', () => {})
  const head = Object.entries({ host: 'localhost', ...headers }).map(([key, value]) => `${key}: ${value}\r\n`).join('')
  socket.write(`${method} ${path} HTTP/1.1\r\n${head}\r\n`)
  let received = ''
  const status = new Promise<number>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
      const match = /^HTTP\/1\.1 (\d{3})/.exec(received)
      if (match !== null) resolve(Number(match[1]))
    })
    socket.once('close', () => reject(new Error(`closed without an answer (got ${JSON.stringify(received.slice(0, 80))})`)))
  })
  status.catch(() => {})
  return {
    socket,
    status,
    write: (bytes) => { if (!socket.destroyed) socket.write(bytes) },
    destroy: () => socket.destroy(),
  }
}
