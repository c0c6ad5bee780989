import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The shared test database (README: Postgres on 127.0.0.1:5432, trust auth, db `test`). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** A schema name no other test run uses. */
export const uniqueSchema = (label: string): string => `t_${label}_${randomBytes(5).toString('hex')}`

/** Drops a schema and everything in it; for teardown. */
export const dropSchema = async (schema: string, url = TEST_DATABASE_URL): Promise<void> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  } finally {
    await client.end()
  }
}
