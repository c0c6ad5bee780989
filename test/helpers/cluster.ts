import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import * as Y from 'yjs'
import { PostgresStorage } from '../../server/storage/postgres.js'
import type { Client } from './clients.js'
import { startServerProcess, type ServerProcess } from './server-process.js'

export interface ClusterEnv {
  readonly databaseUrl: string
  readonly schema: string
  readonly redisUrl: string
  readonly prefix: string
}

/** Starts `count` real server processes on one Postgres schema and one Redis key prefix. */
export const startInstances = async (env: ClusterEnv, count = 3, extra: Record<string, string> = {}): Promise<ServerProcess[]> => {
  const started = await Promise.allSettled(Array.from({ length: count }, () => startServerProcess({
    DATABASE_URL: env.databaseUrl,
    DATABASE_SCHEMA: env.schema,
    REDIS_URL: env.redisUrl,
    REDIS_PREFIX: env.prefix,
    ...extra,
  })))
  const instances = started.flatMap((s) => s.status === 'fulfilled' ? [s.value] : [])
  const failed = started.find((s) => s.status === 'rejected')
  if (failed !== undefined) {
    await Promise.all(instances.map((i) => i.kill()))
    throw (failed as PromiseRejectedResult).reason
  }
  return instances
}

export const uniquePrefix = (label: string): string => `test-${label}-${randomBytes(5).toString('hex')}:`

/** Deletes every key under `prefix`; for teardown. */
export const deleteKeys = async (redisUrl: string, prefix: string): Promise<void> => {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

/** Inserts `token` at a random token boundary of the client's text (tokens end with `>`). */
export const insertToken = (client: Client, token: string, random: () => number = Math.random): void => {
  const text = client.text.toString()
  const boundaries = [0]
  for (let i = 0; i < text.length; i++) if (text[i] === '>') boundaries.push(i + 1)
  client.text.insert(boundaries[Math.floor(random() * boundaries.length)]!, token)
}

/** How often `token` occurs in `text`. */
export const occurrences = (text: string, token: string): number => text.split(token).length - 1

/** Status of an instance's readiness check, or 0 when it does not answer. */
export const readiness = async (http: string): Promise<number> => {
  try {
    return (await fetch(`${http}/readiness_check`, { signal: AbortSignal.timeout(5000) })).status
  } catch {
    return 0
  }
}

/** The text (`getText('text')`, as the test clients use) of what Postgres holds for `room`. */
export const storedText = async (databaseUrl: string, schema: string, room: string): Promise<string> => {
  const storage = await PostgresStorage.open({ url: databaseUrl, schema, connectTimeoutMs: 2000 })
  const doc = new Y.Doc()
  try {
    for (const update of (await storage.load(room)).updates) Y.applyUpdate(doc, update)
    return doc.getText('text').toString()
  } finally {
    doc.destroy()
    await storage.close()
  }
}
