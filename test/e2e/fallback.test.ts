/**
 * The long-polling fallback in Chromium: a page that has no WebSocket at all edits together with a normal
 * page, and `?transport=poll` forces polling.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { browserMissing, launchBrowser, samePageText, typeAtEnd, waitSynced, type EditorPage } from '../helpers/browser.js'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js'

declare const window: any
declare const document: any

const skip = browserMissing() ?? false

describe('long-polling fallback in Chromium', { skip }, () => {
  let browser: Browser
  let server: ServerProcess
  let dataDir: string
  const pages: EditorPage[] = []

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'yjs-relay-fallback-'))
    server = await startServerProcess({ DATA_DIR: dataDir })
    browser = await launchBrowser()
  })
  after(async () => {
    for (const page of pages) await page.context.close().catch(() => {})
    await browser?.close()
    await server?.kill('SIGKILL')
    await rm(dataDir, { recursive: true, force: true })
  })

  const open = async (path: string, init?: () => void): Promise<EditorPage> => {
    const context = await browser.newContext()
    if (init !== undefined) await context.addInitScript(init)
    const page = await context.newPage()
    const editor: EditorPage = { context, page, errors: [], allow: [] }
    page.on('console', (message) => { if (message.type() === 'error') editor.errors.push(message.text()) })
    page.on('pageerror', (error) => editor.errors.push(`uncaught: ${error.message}`))
    pages.push(editor)
    await page.goto(`${server.http}${path}`)
    await waitSynced(editor)
    return editor
  }

  const transportOf = (editor: EditorPage): Promise<string> =>
    editor.page.evaluate(() => document.getElementById('status')!.textContent as string)

  test('a page whose WebSocket is removed before load edits together with a normal page', async () => {
    const blocked = await open('/?room=no-websocket', () => { delete (window as any).WebSocket })
    const normal = await open('/?room=no-websocket')
    assert.equal(await blocked.page.evaluate(() => typeof window.WebSocket), 'undefined')
    await typeAtEnd(blocked, 'typed over long-polling. ')
    await samePageText([blocked, normal], { expected: 'typed over long-polling. ' })
    await typeAtEnd(normal, 'typed over WebSocket.')
    await samePageText([blocked, normal], { expected: 'typed over long-polling. typed over WebSocket.' })
    assert.match(await transportOf(blocked), /poll/i)
    assert.match(await transportOf(normal), /websocket/i)
    assert.deepEqual(blocked.errors, [])
    assert.deepEqual(normal.errors, [])
  })

  test('?transport=poll forces long-polling', async () => {
    const forced = await open('/?room=forced-poll&transport=poll')
    const normal = await open('/?room=forced-poll')
    await typeAtEnd(forced, 'forced. ')
    await samePageText([forced, normal], { expected: 'forced. ' })
    assert.match(await transportOf(forced), /poll/i)
    // The demo's "drop my connection" has no connection to drop on a polling page.
    assert.equal(await forced.page.locator('#demo-close-me').isDisabled(), true)
    assert.equal(await normal.page.locator('#demo-close-me').isDisabled(), false)
    assert.deepEqual(forced.errors, [])
  })
})
