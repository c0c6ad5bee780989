#!/usr/bin/env node
/**
 * `npm run dev`: builds once, then rebuilds the server (tsc --watch) and the web editor (esbuild watch) on
 * every change, and restarts the server when its compiled code changes (node --watch). Environment and
 * arguments are passed on to the server, e.g. `DEMO=true npm run dev`.
 */
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { watchWeb } from './build-web.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const children = []
const run = (args) => {
  const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' })
  children.push(child)
  return child
}

const web = await watchWeb()
run([join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--watch', '--preserveWatchOutput'])
run(['--watch-path=dist/server', join(root, 'dist', 'server', 'main.js'), ...process.argv.slice(2)])

const stop = async () => {
  for (const child of children) child.kill('SIGTERM')
  await web.dispose()
  process.exit(0)
}
process.on('SIGINT', () => { void stop() })
process.on('SIGTERM', () => { void stop() })
