import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs'
import { get, type IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib'
import { acceptsEncoding } from '../../server/transport/static-files.js'
import { startServer, type TestServer } from '../helpers/server.js'

interface Reply { readonly status: number, readonly headers: IncomingHttpHeaders, readonly body: Buffer }

/** A raw GET (fetch would negotiate and decompress by itself). */
const request = (url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> => new Promise((resolve, reject) => {
  get(url, { headers, method }, (response) => {
    const chunks: Buffer[] = []
    response.on('data', (chunk: Buffer) => chunks.push(chunk))
    response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }))
  }).on('error', reject)
})

describe('the editor files (static routes)', () => {
  const root = mkdtempSync(join(tmpdir(), 'static-'))
  const script = Buffer.from(`console.log(${JSON.stringify('x'.repeat(5000))})\n`)
  const page = Buffer.from('<!doctype html><title>editor</title>\n')
  let server: TestServer

  before(async () => {
    mkdirSync(join(root, 'assets'))
    writeFileSync(join(root, 'index.html'), page)
    writeFileSync(join(root, 'assets', 'main-ABCD1234.js'), script)
    writeFileSync(join(root, 'assets', 'main-ABCD1234.js.br'), brotliCompressSync(script))
    writeFileSync(join(root, 'assets', 'main-ABCD1234.js.gz'), gzipSync(script))
    // index.html's gzip sibling is older than the file: left from an earlier build.
    writeFileSync(join(root, 'index.html.gz'), gzipSync(Buffer.from('<!doctype html><title>old</title>')))
    const past = new Date(Date.now() - 60_000)
    utimesSync(join(root, 'index.html.gz'), past, past)
    server = await startServer({ webRoot: root })
  })
  after(async () => {
    await server.close()
    rmSync(root, { recursive: true, force: true })
  })

  it('serves index.html at / for revalidation and hashed assets as immutable', async () => {
    const index = await request(`${server.http}/`)
    assert.equal(index.status, 200)
    assert.deepEqual(index.body, page)
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8')
    assert.equal(index.headers['cache-control'], 'no-cache')
    const asset = await request(`${server.http}/assets/main-ABCD1234.js`)
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable')
    assert.equal(asset.headers['x-content-type-options'], 'nosniff')
  })

  it('sends the brotli or gzip sibling to a client that accepts it, the bytes themselves to one that does not', async () => {
    const url = `${server.http}/assets/main-ABCD1234.js`
    const br = await request(url, { 'accept-encoding': 'gzip, deflate, br' })
    assert.equal(br.headers['content-encoding'], 'br')
    assert.equal(Number(br.headers['content-length']), br.body.length)
    assert.ok(br.body.length < script.length / 10, `${br.body.length} bytes compressed of ${script.length}`)
    assert.deepEqual(brotliDecompressSync(br.body), script)
    const gz = await request(url, { 'accept-encoding': 'gzip' })
    assert.equal(gz.headers['content-encoding'], 'gzip')
    assert.deepEqual(gunzipSync(gz.body), script)
    const brRefused = await request(url, { 'accept-encoding': 'br;q=0, gzip' })
    assert.equal(brRefused.headers['content-encoding'], 'gzip')
    const plain = await request(url)
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.deepEqual(plain.body, script)
    for (const reply of [br, gz, plain]) assert.equal(reply.headers.vary, 'accept-encoding')
  })

  it('ignores a compressed sibling older than its file', async () => {
    const index = await request(`${server.http}/`, { 'accept-encoding': 'gzip' })
    assert.equal(index.headers['content-encoding'], undefined)
    assert.deepEqual(index.body, page)
  })

  it('answers a request carrying the current ETag with 304 and no body; each encoding has its own tag', async () => {
    const url = `${server.http}/assets/main-ABCD1234.js`
    const first = await request(url, { 'accept-encoding': 'br' })
    const etag = first.headers.etag!
    assert.match(etag, /^".+"$/)
    const again = await request(url, { 'accept-encoding': 'br', 'if-none-match': etag })
    assert.equal(again.status, 304)
    assert.equal(again.body.length, 0)
    assert.equal(again.headers.etag, etag)
    const other = await request(url, { 'accept-encoding': 'gzip', 'if-none-match': etag })
    assert.equal(other.status, 200, 'the brotli tag does not validate the gzip bytes')
    assert.notEqual(other.headers.etag, etag)
  })

  it('answers HEAD with the headers of GET and no body', async () => {
    const head = await request(`${server.http}/assets/main-ABCD1234.js`, { 'accept-encoding': 'br' }, 'HEAD')
    assert.equal(head.status, 200)
    assert.equal(head.headers['content-encoding'], 'br')
    assert.equal(head.body.length, 0)
  })

  it('never serves a file outside its folder, nor a compressed sibling asked for by a path that escapes', async () => {
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json']) {
      const reply = await request(`${server.http}${path}`)
      assert.equal(reply.status, 404, path)
    }
  })
})

describe('acceptsEncoding', () => {
  it('reads names, q-values and the wildcard of Accept-Encoding', () => {
    assert.equal(acceptsEncoding(undefined, 'br'), false)
    assert.equal(acceptsEncoding('gzip, deflate, br', 'br'), true)
    assert.equal(acceptsEncoding('gzip;q=1.0, br;q=0', 'br'), false)
    assert.equal(acceptsEncoding('GZIP', 'gzip'), true)
    assert.equal(acceptsEncoding('*', 'br'), true)
    assert.equal(acceptsEncoding('*;q=0, gzip', 'br'), false)
    assert.equal(acceptsEncoding('identity', 'gzip'), false)
  })
})
