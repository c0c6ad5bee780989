/**
 * The web editor in Chromium against the real server as a child process: sync, presence, outages,
 * connection-age closes, offline edits, hostile room names, and screenshots for a human to look at.
 */
import { after, afterEach, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import {
  browserMissing, launchBrowser, openEditor, samePageText, screenshot, statusOf, textOf, typeAtEnd, waitSynced, type EditorPage,
} from '../helpers/browser.js'
import * as Y from 'yjs'
import { signToken } from '../../server/tokens.js'
import { connectClient, synced } from '../helpers/clients.js'
import { PeakMemory } from '../helpers/memory.js'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait.js'

// Functions passed to page.evaluate run in the browser; the Node compilation has no DOM types.
declare const document: any
declare const window: any
declare const navigator: any

const skip = browserMissing() ?? false
/**
 * What Chromium logs by itself when it cannot reach the server (a WebSocket, then the long-poll fallback's
 * requests): expected while the server is down.
 */
const UNREACHABLE = /WebSocket connection to .* failed|Failed to load resource: net::ERR_CONNECTION_REFUSED/

describe('web editor in Chromium', { skip }, () => {
  let browser: Browser
  let dataDir: string
  const servers: ServerProcess[] = []
  let pages: EditorPage[] = []

  const start = async (env: Record<string, string> = {}, port = 0): Promise<ServerProcess> => {
    const server = await startServerProcess({ DATA_DIR: dataDir, DEMO: 'true', ...env }, { port })
    servers.push(server)
    return server
  }
  const open = async (server: ServerProcess, room: string, options: Parameters<typeof openEditor>[3] = {}): Promise<EditorPage> => {
    const page = await openEditor(browser, server.http, room, options)
    pages.push(page)
    return page
  }

  before(async () => { browser = await launchBrowser() })
  after(async () => { await browser?.close() })
  afterEach(async () => {
    const opened = pages
    pages = []
    try {
      for (const page of opened) assert.deepEqual(page.errors, [], 'no console errors')
    } finally {
      for (const page of opened) await page.context.close().catch(() => {})
      for (const server of servers.splice(0)) await server.kill('SIGKILL')
      if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
    }
  })
  const freshData = async (): Promise<void> => { dataDir = await mkdtemp(join(tmpdir(), 'yjs-relay-e2e-')) }

  test('two pages on one room see each other\'s text, cursor and name; screenshots of the editor and the demo panel', async () => {
    await freshData()
    const server = await start()
    const alice = await open(server, 'pair', { name: 'Alice', color: '#d1495b' })
    const bob = await open(server, 'pair', { name: 'Bob', color: '#0077b6' })
    await typeAtEnd(alice, 'Hello from Alice.\n')
    await samePageText([alice, bob], { expected: 'Hello from Alice.\n' })
    await typeAtEnd(bob, 'And Bob here.')
    await samePageText([alice, bob], { expected: 'Hello from Alice.\nAnd Bob here.' })
    // Put Alice's cursor somewhere visible, then check each page draws the other's caret with its name.
    await alice.page.keyboard.press('Control+Home')
    await alice.page.keyboard.press('Shift+End')
    await bob.page.waitForFunction(() => [...document.querySelectorAll('.cm-ySelectionInfo')].some((e) => e.textContent === 'Alice'))
    await alice.page.waitForFunction(() => [...document.querySelectorAll('.cm-ySelectionInfo')].some((e) => e.textContent === 'Bob'))
    const people = await bob.page.locator('#people li').allTextContents()
    assert.deepEqual(people, ['Bob (you)', 'Alice'])
    assert.equal(await statusOf(bob), 'connected')
    await screenshot(bob.page, 'editor-two-users.png')

    // The demo panel: drop Bob's connection as the hour limit would, and show the log.
    await bob.page.locator('#demo-close-me').waitFor({ state: 'visible' })
    await bob.page.click('#demo-close-me')
    await bob.page.waitForFunction(() => document.querySelector('#event-log li[data-kind="disconnect"]')?.textContent?.includes('4000') === true)
    await bob.page.waitForFunction(() => document.querySelector('#event-log li[data-kind="resync"]') !== null)
    await waitSynced(bob)
    assert.match(await bob.page.locator('#last-close').innerText(), /^4000, connection-age limit/)
    await bob.page.click('#demo-restart')
    await bob.page.waitForFunction(() => document.querySelector('#event-log li[data-kind="disconnect"]')?.textContent?.includes('1012') === true)
    await alice.page.waitForFunction(() => document.querySelector('#event-log li[data-kind="disconnect"]')?.textContent?.includes('1012') === true)
    await Promise.all([waitSynced(alice), waitSynced(bob)])
    await typeAtEnd(alice, ' Still here.')
    await samePageText([alice, bob], { expected: 'Hello from Alice.\nAnd Bob here. Still here.' })
    await screenshot(bob.page, 'demo-panel.png', '#demo')

    // Phone width: everything stacks; a screenshot for a human to check.
    const phone = await open(server, 'pair', { name: 'Carol', color: '#2a9d8f', viewport: { width: 390, height: 844 } })
    // Everyone is back in the list after the restart (a reconnecting client must announce a newer state).
    await phone.page.waitForFunction(() => document.querySelectorAll('#people li').length === 3)
    await screenshot(phone.page, 'editor-phone.png')
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    assert.ok(overflow <= 0, `no sideways scrolling at phone width (overflow ${overflow}px)`)
  })

  test('a peer\'s cursor colour cannot restyle the page: the editor draws it from a safe colour', async () => {
    await freshData()
    const server = await start()
    const page = await open(server, 'colours', { name: 'Alice', color: '#d1495b' })
    await typeAtEnd(page, 'Some text to point at.')
    await samePageText([page], { expected: 'Some text to point at.' })
    const mallory = connectClient(server.url, 'colours')
    try {
      await synced(mallory)
      const at = (index: number): unknown => Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(mallory.text, index))
      mallory.provider.awareness.setLocalState({
        user: { name: 'Mallory', color: 'red; position: fixed; inset: 0; z-index: 9', colorLight: 'red; position: fixed; inset: 0' },
        cursor: { anchor: at(0), head: at(4) },
      })
      await page.page.waitForFunction(() => [...document.querySelectorAll('.cm-ySelectionInfo')].some((e) => e.textContent === 'Mallory'))
      const styles: string[] = await page.page.evaluate(() =>
        [...document.querySelectorAll('.cm-ySelection, .cm-ySelectionCaret, .cm-ySelectionInfo')].map((e) => e.getAttribute('style') ?? ''))
      assert.ok(styles.length > 0)
      for (const style of styles) assert.doesNotMatch(style, /position|inset|red/, style)
      assert.deepEqual(await page.page.locator('#people li').allTextContents(), ['Alice (you)', 'Mallory'])
    } finally {
      mallory.destroy()
    }
  })

  test('a peer with a malformed cursor or state loses its own cursor only: every other cursor stays drawn, nothing throws', async () => {
    await freshData()
    const server = await start()
    const memory = new PeakMemory(server.child.pid)
    const alice = await open(server, 'cursors', { name: 'Alice', color: '#d1495b' })
    const bob = await open(server, 'cursors', { name: 'Bob', color: '#0077b6' })
    await typeAtEnd(alice, 'First line.\nSecond line.')
    await samePageText([alice, bob], { expected: 'First line.\nSecond line.' })
    const mallory = connectClient(server.url, 'cursors')
    try {
      await synced(mallory)
      const at = (index: number): unknown => Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(mallory.text, index))
      const hostile: unknown[] = [
        { user: { name: 'Mallory', color: '#112233' }, cursor: { anchor: {}, head: {} } },
        { user: { name: 'Mallory' }, cursor: { anchor: { item: { client: 'x', clock: {} } }, head: { item: null, type: 5 } } },
        { user: { name: 'Mallory' }, cursor: { anchor: { tname: 'other' }, head: { tname: 'text', assoc: 'left' } } },
        { user: { name: 'Mallory' }, cursor: { anchor: { type: { client: 1, clock: -1 } }, head: at(2) } },
        { user: 'Mallory', cursor: 'everywhere' },
        { user: ['a'], cursor: { anchor: at(0), head: [] } },
        'a state that is a string',
        42,
      ]
      // Bob's caret moves after each hostile state has reached Alice; she must see it every time.
      for (const [i, state] of hostile.entries()) {
        mallory.provider.awareness.setLocalState(state as Record<string, unknown>)
        const clock = mallory.provider.awareness.meta.get(mallory.doc.clientID)!.clock
        await alice.page.waitForFunction(({ id, clock }) => (window as any).yjsRelay.provider.awareness.meta.get(id)?.clock >= clock,
          { id: mallory.doc.clientID, clock })
        await bob.page.bringToFront()
        await bob.page.click('.cm-content')
        await bob.page.keyboard.press(i % 2 === 0 ? 'Control+Home' : 'Control+End')
        const offset = i % 2 === 0 ? 0 : 'First line.\nSecond line.'.length
        await alice.page.waitForFunction((offset) => {
          const view = (window as any).yjsRelay.editor
          return [...document.querySelectorAll('.cm-ySelectionInfo')].some((e: any) =>
            e.textContent === 'Bob' && view.posAtDOM(e.parentElement) === offset)
        }, offset)
      }
      // And a well-formed state of the same peer draws its cursor again.
      mallory.provider.awareness.setLocalState({ user: { name: 'Mallory', color: '#112233' }, cursor: { anchor: at(0), head: at(5) } })
      await alice.page.waitForFunction(() => [...document.querySelectorAll('.cm-ySelectionInfo')].some((e) => e.textContent === 'Mallory'))
      await bob.page.waitForFunction(() => [...document.querySelectorAll('.cm-ySelectionInfo')].some((e) => e.textContent === 'Mallory'))
      assert.deepEqual(await alice.page.locator('#people li').allTextContents(), ['Alice (you)', 'Bob', 'Mallory'])
      // Nothing here needs much of the server: a cursor is a few bytes.
      assert.ok(memory.growthMb < 100, `server memory rose ${memory.growthMb.toFixed(0)} MiB`)
    } finally {
      mallory.destroy()
    }
  })

  test('on a server with AUTH_SECRET, a page opened with ?token= edits the room, keeps the token out of its address, and across a reload', async () => {
    await freshData()
    const secret = 'an-auth-secret-of-the-tests-0123456789'
    const server = await start({ AUTH_SECRET: secret })
    const token = await signToken({ secret, room: 'secured', mode: 'write', ttlSeconds: 600 })
    const page = await open(server, 'secured', { query: { token } })
    await typeAtEnd(page, 'with a token')
    assert.doesNotMatch(page.page.url(), /token/)
    await page.page.reload()
    await waitSynced(page)
    await samePageText([page], { expected: 'with a token' })
    const stored = await fetch(`${server.http}/api/docs/secured`, { headers: { authorization: `Bearer ${token}` } })
    assert.deepEqual(await stored.json(), { text: 'with a token' })
  })

  test('a page whose link\'s token runs out says the session expired and what to do, and stops', async () => {
    await freshData()
    const secret = 'an-auth-secret-of-the-tests-0123456789'
    const server = await start({ AUTH_SECRET: secret })
    const token = await signToken({ secret, room: 'expiring', mode: 'write', ttlSeconds: 3 })
    const page = await open(server, 'expiring', { query: { token } })
    await typeAtEnd(page, 'before the end')
    // exp plus the server's 5 s clock tolerance
    await waitFor(async () => await statusOf(page) === 'expired', { timeoutMs: 15_000, message: 'the page shows the session expired' })
    const text = await page.page.locator('#status').textContent()
    assert.match(text ?? '', /^Session expired: .*Ask for a new link to this room and open it/)
    await screenshot(page.page, 'session-expired.png')
  })

  test('a server killed with SIGKILL and restarted: both pages show the outage, reconnect by themselves, and lose or duplicate nothing', async () => {
    await freshData()
    const first = await start()
    const a = await open(first, 'outage', { name: 'A' })
    const b = await open(first, 'outage', { name: 'B' })
    await typeAtEnd(a, 'one ')
    await samePageText([a, b], { expected: 'one ' })
    await typeAtEnd(b, 'two ')
    await samePageText([a, b], { expected: 'one two ' })
    for (const page of [a, b]) page.allow.push(UNREACHABLE)

    await first.kill('SIGKILL')
    await waitFor(async () => (await statusOf(a)) === 'reconnecting' && (await statusOf(b)) === 'reconnecting', { timeoutMs: 15_000, message: 'both pages show the outage' })
    assert.match(await a.page.locator('#status').innerText(), /Reconnecting \(attempt \d+, (next try in [\d.]+ s|trying now)\)/)
    assert.match(await a.page.locator('#last-close').innerText(), /^1006, network/)
    await typeAtEnd(a, 'three ')   // typed during the outage: kept, sent on reconnect

    const second = await start({}, first.port)
    await Promise.all([waitSynced(a, 30_000), waitSynced(b, 30_000)])
    await typeAtEnd(b, 'four')
    const text = await samePageText([a, b])
    for (const word of ['one', 'two', 'three', 'four']) {
      assert.equal(text.split(word).length - 1, 1, `"${word}" exactly once in ${JSON.stringify(text)}`)
    }
    assert.equal(text.length, 'one two three four'.length)
    assert.equal(await statusOf(a), 'connected')
    assert.match(await b.page.locator('#last-resync').innerText(), /after [\d.]+ (ms|s) away/)
    // The restarted server has it on disk: a new page reads the same text.
    const c = await open(second, 'outage')
    assert.equal(await textOf(c), text)
  })

  test('with a 2 s connection age, typing for 10 s in two pages ends in identical text', async () => {
    await freshData()
    const server = await start({ MAX_CONNECTION_AGE_MS: '2000' })
    const a = await open(server, 'age', { name: 'A' })
    const b = await open(server, 'age', { name: 'B' })
    await typeAtEnd(a, 'A:')
    await samePageText([a, b], { expected: 'A:' })
    await typeAtEnd(b, '\nB:')
    await samePageText([a, b], { expected: 'A:\nB:' })
    // Each page types on its own line; A's cursor stays at the end of line 1.
    await a.page.keyboard.press('Control+Home')
    await a.page.keyboard.press('End')
    const typed = { a: 'A:', b: 'B:' }
    const until = Date.now() + 10_000
    const typist = async (page: EditorPage, key: 'a' | 'b'): Promise<void> => {
      for (let i = 0; Date.now() < until; i++) {
        const word = `${key}${i} `
        await page.page.keyboard.type(word, { delay: 15 })
        typed[key] += word
      }
    }
    await Promise.all([typist(a, 'a'), typist(b, 'b')])
    const text = await samePageText([a, b], { timeoutMs: 20_000 })
    assert.equal(text, `${typed.a}\n${typed.b}`)
    const closes = await a.page.evaluate(() => [...document.querySelectorAll('#event-log li[data-kind="disconnect"]')].filter((e: any) => e.textContent.includes('4000')).length)
    assert.ok(closes >= 3, `page A was cut by the age limit several times (${closes})`)
  })

  test('a page that goes offline keeps its edits across a reload and delivers them when back online', async () => {
    await freshData()
    const server = await start()
    const a = await open(server, 'offline', { name: 'A' })
    const b = await open(server, 'offline', { name: 'B' })
    await typeAtEnd(a, 'before ')
    await samePageText([a, b], { expected: 'before ' })
    // The service worker must hold the page before the network goes away.
    await a.page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 15_000 })

    await a.context.setOffline(true)
    await waitFor(async () => (await statusOf(a)) === 'offline', { message: 'page A shows offline' })
    await typeAtEnd(a, 'offline-edit')
    // Reload only once IndexedDB holds the edit (a second document loaded from it sees it).
    await a.page.waitForFunction(async () => {
      const { Y, IndexeddbPersistence, room } = window.yjsRelay
      const copy = new Y.Doc()
      const stored = new IndexeddbPersistence(`yjs-relay/${room}`, copy)
      await stored.whenSynced
      const text = copy.getText('text').toString()
      await stored.destroy()
      return text.includes('offline-edit')
    }, null, { timeout: 10_000 })
    await a.page.reload()
    await a.page.waitForFunction(() => window.yjsRelay?.text.toString() === 'before offline-edit', null, { timeout: 15_000 })
    assert.equal(await statusOf(a), 'offline')
    assert.equal(await textOf(b), 'before ', 'B has not seen the offline edit yet')

    await a.context.setOffline(false)
    await samePageText([a, b], { expected: 'before offline-edit' })
    await waitSynced(a)
  })

  test('a room name with spaces, unicode and <script> is shown as text and works', async () => {
    await freshData()
    const server = await start()
    const room = 'my room ✓ 日本 <script>alert(1)</script>'
    const a = await open(server, room)
    const b = await open(server, room)
    assert.equal(await a.page.locator('#room-name').textContent(), room)
    assert.equal(await a.page.title(), `${room} · yjs-relay`)
    assert.equal(await a.page.evaluate(() => document.querySelectorAll('script').length), 1, 'no script element was injected')
    assert.equal(await a.page.evaluate(() => window.yjsRelay.room), room)
    const url = new URL(a.page.url())
    assert.equal(url.searchParams.get('room'), room)
    await typeAtEnd(a, 'safe')
    await samePageText([a, b], { expected: 'safe' })
    // The demo API finds the room under the same name as the socket did.
    await a.page.click('#demo-close-me')
    await a.page.waitForFunction(() => document.querySelector('#event-log li[data-kind="disconnect"]')?.textContent?.includes('4000') === true)
    await waitSynced(a)
  })

  test('a page without a room gets a fresh random one in its URL, and the demo is reported off without DEMO', async () => {
    await freshData()
    const server = await start({ DEMO: 'false' })
    const context = await browser.newContext()
    const page = await context.newPage()
    const editor: EditorPage = { context, page, errors: [], allow: [] }
    pages.push(editor)
    page.on('console', (message) => { if (message.type() === 'error') editor.errors.push(message.text()) })
    await page.goto(`${server.http}/`)
    await waitSynced(editor)
    const room = new URL(page.url()).searchParams.get('room')
    assert.match(room ?? '', /^note-[0-9a-z]{10}$/)
    await page.waitForFunction(() => document.getElementById('demo-note')?.textContent?.startsWith('The demo is off'))
    assert.equal(await page.locator('#demo-controls').isHidden(), true)
    // Keyboard: Tab reaches the copy-link button and the name field; every control has a label.
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input')].filter((i: any) => i.labels.length === 0).length)
    assert.equal(unlabelled, 0)
  })
})
