#!/usr/bin/env node
/**
 * Builds the web editor into dist/web: type-checks web/ (DOM lib), bundles web/main.ts and web/style.css
 * with esbuild into hashed files under assets/, writes index.html pointing at them, and builds the
 * service worker (sw.js) with the list of files it keeps for offline reloads.
 *
 *   node scripts/build-web.mjs            build once (part of `npm run build`)
 *   node scripts/build-web.mjs --watch    rebuild on every change (used by `npm run dev`)
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { brotliCompress, constants, gzip } from 'node:zlib'
import * as esbuild from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist', 'web')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

const typecheck = () => {
  for (const project of ['web/tsconfig.json', 'web/tsconfig.sw.json']) {
    const result = spawnSync(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit' })
    if (result.status !== 0) return false
  }
  return true
}

/** Writes index.html and sw.js for the files esbuild produced. */
const finish = async (metafile) => {
  const outputs = Object.keys(metafile.outputs).map((file) => '/' + relative(out, join(root, file)).split('\\').join('/'))
  const script = outputs.find((file) => /^\/assets\/main-[^/]+\.js$/.test(file))
  const style = outputs.find((file) => /^\/assets\/style-[^/]+\.css$/.test(file))
  if (script === undefined || style === undefined) throw new Error(`build-web: missing outputs in ${outputs.join(', ')}`)
  const html = (await readFile(join(root, 'web', 'index.html'), 'utf8'))
    .replace('__SCRIPT__', script)
    .replace('__STYLE__', style)
  await writeFile(join(out, 'index.html'), html)
  const shell = ['/', script, style]
  const version = createHash('sha256').update(shell.join('\n')).digest('hex').slice(0, 12)
  await esbuild.build({
    entryPoints: [join(root, 'web', 'sw.ts')],
    outfile: join(out, 'sw.js'),
    bundle: true,
    format: 'iife',
    target: 'es2022',
    minify: true,
    define: { __SHELL__: JSON.stringify(shell), __VERSION__: JSON.stringify(version) },
    logLevel: 'warning',
  })
}

const options = {
  entryPoints: { main: join(root, 'web', 'main.ts'), style: join(root, 'web', 'style.css') },
  outdir: out,
  entryNames: 'assets/[name]-[hash]',
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
}

const cleanAssets = async () => {
  await rm(join(out, 'assets'), { recursive: true, force: true })
  await mkdir(join(out, 'assets'), { recursive: true })
}

/**
 * Writes a .br and a .gz beside each file the browser loads (the script is ~500 KB, ~130 KB as brotli);
 * the server sends them to clients that accept them. Not in watch mode: the server ignores a sibling
 * older than its file, so a rebuild without them is served uncompressed.
 */
const compressOutputs = async () => {
  const files = ['index.html', 'sw.js', ...(await readdir(join(out, 'assets'))).filter((f) => /\.(js|css)$/.test(f)).map((f) => `assets/${f}`)]
  await Promise.all(files.map(async (file) => {
    const bytes = await readFile(join(out, file))
    const [br, gz] = await Promise.all([
      promisify(brotliCompress)(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } }),
      promisify(gzip)(bytes, { level: 9 }),
    ])
    await Promise.all([writeFile(join(out, `${file}.br`), br), writeFile(join(out, `${file}.gz`), gz)])
  }))
}

export const buildWeb = async () => {
  if (!typecheck()) throw new Error('build-web: web/ does not type-check')
  await cleanAssets()
  const result = await esbuild.build(options)
  await finish(result.metafile)
  await compressOutputs()
}

export const watchWeb = async () => {
  await cleanAssets()
  const context = await esbuild.context({
    ...options,
    plugins: [{
      name: 'finish',
      setup (build) {
        build.onEnd(async (result) => {
          if (result.errors.length > 0 || result.metafile === undefined) return
          await finish(result.metafile)
          // Keep only this build's hashed files.
          const keep = new Set(Object.keys(result.metafile.outputs).map((file) => basename(file)))
          for (const file of await readdir(join(out, 'assets'))) if (!keep.has(file)) await rm(join(out, 'assets', file), { force: true })
          process.stdout.write(`web: rebuilt ${new Date().toLocaleTimeString()}\n`)
        })
      },
    }],
  })
  await context.watch()
  return context
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--watch')) {
    await watchWeb()
  } else {
    try {
      await buildWeb()
    } catch (error) {
      process.stderr.write(`${error.message}\n`)
      process.exit(1)
    }
  }
}
