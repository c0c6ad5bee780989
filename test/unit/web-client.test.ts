import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeClose, isFinalClose } from '../../web/close-codes.js'
import { randomRoomName, roomFromUrl, shareUrl } from '../../web/room-url.js'
import { validateRoomName } from '../../server/access.js'
import { pollUrl } from '../../web/poll-channel.js'
import { safeCursor } from '../../web/remote-state.js'
import { roomUrl, serverRoomName } from '../../web/websocket-channel.js'

test('close codes are described in words, and only 4400-4499 are final', () => {
  assert.equal(describeClose(4000), 'connection-age limit: the server closes long-lived sockets')
  assert.equal(describeClose(1012, 'server restarting'), 'server restart (server restarting)')
  assert.equal(describeClose(1006), 'network: the connection broke or could not be made')
  assert.match(describeClose(4503), /^storage unavailable/)
  assert.match(describeClose(4401), /^authentication required/)
  assert.match(describeClose(4403), /^forbidden/)
  assert.equal(describeClose(4450), 'rejected by the server')
  assert.equal(describeClose(4555), 'server busy, try again later')
  assert.deepEqual([4399, 4400, 4403, 4499, 4500, 4000, 1012].map(isFinalClose), [false, true, true, true, false, false, false])
})

test('the room comes from ?room= first, then the hash, decoded', () => {
  assert.equal(roomFromUrl('http://h/?room=a%20b#c'), 'a b')
  assert.equal(roomFromUrl('http://h/#my%20room%20%E2%9C%93'), 'my room ✓')
  assert.equal(roomFromUrl('http://h/#bad%E0%A4%A'), 'bad%E0%A4%A')
  assert.equal(roomFromUrl('http://h/'), null)
  assert.equal(roomFromUrl('http://h/?room=%20'), null)
})

test('a share link round-trips any room name, and random rooms look alike but differ', () => {
  for (const room of ['plain', 'my room ✓ <script>alert(1)</script>', 'a/b?c#d&e=f']) {
    assert.equal(roomFromUrl(shareUrl('http://h:8080/?x=1#old', room)), room)
  }
  const a = randomRoomName()
  assert.match(a, /^note-[0-9a-z]{10}$/)
  assert.notEqual(a, randomRoomName())
})

test('the WebSocket URL carries the room as y-websocket does (only ? and # escaped), then the params', () => {
  assert.equal(roomUrl({ serverUrl: 'ws://h:1/', room: 'a b/ü?#', params: {} }), 'ws://h:1/a b/ü%3F%23')
  // Names a stock client cannot reach: each becomes a room name the server takes, its own.
  const names = ['100%', '50%off', '[brackets]', 'a/../b', 'b', 'back\\slash', 'back/slash', '..', '.', 'x/%2e%2E/y', 'caret^pipe|']
  const rooms = names.map(serverRoomName)
  for (const room of rooms) validateRoomName(room)
  assert.equal(new Set(rooms).size, names.length, rooms.join(' '))
  assert.equal(serverRoomName('100%'), '100%25')
  assert.equal(serverRoomName('a b'), 'a%20b', 'as a stock client names it')
  // The long-poll URL names the same room: a `?` or `#` left in would end its path.
  assert.equal(new URL(pollUrl('ws://h:1/', 'a b/ü?#')).pathname, `/poll/${serverRoomName('a b/ü?#')}`)
  assert.equal(roomUrl({ serverUrl: 'ws://h:1', room: 'r', params: { token: 'x y' } }), 'ws://h:1/r?token=x+y')
  assert.equal(serverRoomName('my room ✓ <script>'), 'my%20room%20%E2%9C%93%20%3Cscript%3E')
  assert.equal(serverRoomName('a/b?c'), 'a/b%3Fc')
})

test('a remote cursor next to a Yjs 14 client\'s text (a 53-bit client id) is drawn; an inexact id is not', () => {
  const at = (client: number) => ({ type: null, tname: null, item: { client, clock: 3 }, assoc: 0 })
  const max = Number.MAX_SAFE_INTEGER
  assert.deepEqual(safeCursor({ anchor: at(max), head: at(2 ** 32 + 1) }), { anchor: at(max), head: at(2 ** 32 + 1) })
  assert.equal(safeCursor({ anchor: at(2 ** 53), head: at(1) }), null)
  assert.equal(safeCursor({ anchor: at(-1), head: at(1) }), null)
})
