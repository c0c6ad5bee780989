/**
 * Hocuspocus 4 on 127.0.0.1:PORT with the smallest database extension there is: each document's state in
 * one file under DATA_DIR, loaded on open and written by Hocuspocus's (debounced) store hook, as its
 * database extensions do.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Server } from '@hocuspocus/server'
import * as Y from 'yjs'

const dir = process.env.DATA_DIR ?? '.bench-tmp/hocuspocus'
mkdirSync(dir, { recursive: true })
const fileOf = (name: string): string => join(dir, `${encodeURIComponent(name)}.bin`)

const server = new Server({
  port: Number(process.env.PORT ?? 0),
  address: '127.0.0.1',
  quiet: true,
  stopOnSignals: false,
  async onLoadDocument ({ documentName, document }) {
    const file = fileOf(documentName)
    if (existsSync(file)) Y.applyUpdate(document, readFileSync(file))
    return document
  },
  async onStoreDocument ({ documentName, document }) {
    writeFileSync(fileOf(documentName), Y.encodeStateAsUpdate(document))
  },
})
await server.listen()
process.on('SIGTERM', () => { void server.destroy().then(() => process.exit(0)) })
