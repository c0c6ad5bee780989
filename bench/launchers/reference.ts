/**
 * The y-websocket reference server (`@y/websocket-server` 0.1.1), as its own `server.js` starts it, on
 * 127.0.0.1:PORT. With YPERSISTENCE set it stores every update in LevelDB (its only built-in storage).
 */
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'
import { setupWSConnection } from '@y/websocket-server/utils'

const wss = new WebSocketServer({ noServer: true })
const server = createServer((_request, response) => { response.end('okay') })
wss.on('connection', setupWSConnection)
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
})
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1')
// LevelDB writes are asynchronous: give the last ones a moment before a graceful stop exits.
process.on('SIGTERM', () => { setTimeout(() => process.exit(0), 500) })
