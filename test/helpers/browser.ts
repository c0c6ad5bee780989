import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { waitFor } from './wait.js'

// Functions passed to the page run in the browser; the Node compilation has no DOM types.
declare const document: any
declare const window: any
declare const localStorage: any

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Where tests save screenshots (git-ignored). */
export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'artifacts')

/** Why browser tests cannot run here, or null. Under CI a missing browser is a failure, not a skip. */
export const browserMissing = (): string | null => {
  if (existsSync(CHROMIUM)) return null
  const reason = `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`
  if (process.env.CI === 'true') throw new Error(`${reason}; CI must run the browser tests`)
  process.stderr.write(`\n*** SKIPPING BROWSER TESTS: ${reason} ***\n\n`)
  return reason
}

export const launchBrowser = async (): Promise<Browser> => {
  const { chromium } = await import('playwright-core')
  // Playwright gives every launch a fresh temporary profile (user-data-dir).
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })
}

/** A page of the editor with everything it logged as an error. */
export interface EditorPage {
  readonly context: BrowserContext
  readonly page: Page
  /** Console errors and uncaught exceptions, minus the ones the test said to expect. */
  readonly errors: string[]
  /** Messages matching these are expected (e.g. failed WebSocket connections while the server is down). */
  allow: RegExp[]
}

export interface OpenOptions {
  readonly name?: string
  readonly color?: string
  readonly viewport?: { width: number, height: number }
  /** More query parameters for the page's URL (a token). */
  readonly query?: Record<string, string>
}

/** Opens the editor on `room` in a fresh browser context (its own storage: another user). */
export const openEditor = async (browser: Browser, http: string, room: string, options: OpenOptions = {}): Promise<EditorPage> => {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1200, height: 800 } })
  const page = await context.newPage()
  const editor: EditorPage = { context, page, errors: [], allow: [] }
  const record = (text: string): void => { if (!editor.allow.some((pattern) => pattern.test(text))) editor.errors.push(text) }
  page.on('console', (message) => { if (message.type() === 'error') record(message.text()) })
  page.on('pageerror', (error) => record(`uncaught: ${error.message}`))
  page.on('dialog', (dialog) => { record(`unexpected dialog: ${dialog.message()}`); void dialog.dismiss() })
  if (options.name !== undefined || options.color !== undefined) {
    await context.addInitScript(({ name, color }) => {
      if (name !== undefined) localStorage.setItem('yjs-relay:name', name)
      if (color !== undefined) localStorage.setItem('yjs-relay:color', color)
    }, { name: options.name, color: options.color })
  }
  await page.goto(`${http}/?${new URLSearchParams({ room, ...options.query }).toString()}`)
  await waitSynced(editor)
  return editor
}

export const waitSynced = (editor: EditorPage, timeoutMs = 15_000): Promise<unknown> =>
  editor.page.waitForFunction(() => (window as any).yjsRelay?.provider.synced === true, null, { timeout: timeoutMs })

export const textOf = (editor: EditorPage): Promise<string> =>
  editor.page.evaluate(() => (window as any).yjsRelay.text.toString() as string)

export const statusOf = (editor: EditorPage): Promise<string> =>
  editor.page.evaluate(() => document.getElementById('status')!.dataset.state ?? '')

/** Puts the cursor at the end of the document and types. */
export const typeAtEnd = async (editor: EditorPage, text: string): Promise<void> => {
  await editor.page.click('.cm-content')
  await editor.page.keyboard.press('Control+End')
  await editor.page.keyboard.type(text)
}

/** Waits until every page shows the same text (and `expected`, if given); returns it. */
export const samePageText = async (pages: readonly EditorPage[], { expected, timeoutMs = 15_000 }: { expected?: string, timeoutMs?: number } = {}): Promise<string> => {
  let texts: string[] = []
  await waitFor(async () => {
    texts = await Promise.all(pages.map(textOf))
    return texts.every((t) => t === texts[0]) && (expected === undefined || texts[0] === expected)
  }, { timeoutMs, intervalMs: 100, message: `the same text in every page (${texts.map((t) => JSON.stringify(t.slice(-60))).join(' vs ')})` })
  return texts[0]!
}

export const screenshot = async (page: Page, name: string, selector?: string): Promise<string> => {
  await mkdir(ARTIFACTS, { recursive: true })
  const path = join(ARTIFACTS, name)
  if (selector === undefined) await page.screenshot({ path })
  else await page.locator(selector).screenshot({ path })
  return path
}
