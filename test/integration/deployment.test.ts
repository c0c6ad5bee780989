import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../helpers/services.js'
import { parse } from 'yaml'
import { parseConfig } from '../../server/config.js'
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const HOUR_MS = 60 * 60 * 1000

describe('App Engine deployment', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const app = parse(readFileSync(join(root, 'app.yaml'), 'utf8')) as any
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>, bin: Record<string, string> }

  it('app.yaml targets the flexible Node.js runtime on a current OS', () => {
    assert.equal(app.runtime, 'nodejs')
    assert.equal(app.env, 'flex')
    assert.match(String(app.runtime_config?.operating_system), /^ubuntu\d+$/)
  })

  it('app.yaml splits health checks onto the liveness and readiness routes', () => {
    assert.equal(app.liveness_check?.path, '/liveness_check')
    assert.equal(app.readiness_check?.path, '/readiness_check')
    assert.ok(app.readiness_check.check_interval_sec <= app.liveness_check.check_interval_sec, 'readiness reacts faster than liveness')
  })

  it('app.yaml asks for session affinity and keeps a minimum of instances', () => {
    assert.equal(app.network?.session_affinity, true)
    assert.ok(app.automatic_scaling?.min_num_instances >= 2, 'at least two instances, so a restart never empties the service')
    assert.ok(app.automatic_scaling.max_num_instances >= app.automatic_scaling.min_num_instances)
  })

  it('app.yaml sets Redis, Postgres and a connection age that beats the one-hour cut even with jitter', () => {
    const env = app.env_variables as Record<string, string>
    for (const key of ['REDIS_URL', 'DATABASE_URL', 'MAX_CONNECTION_AGE_MS']) assert.equal(typeof env[key], 'string', `${key} is set`)
    const config = parseConfig(env)
    assert.match(config.redisUrl ?? '', /^redis:/)
    assert.match(config.databaseUrl ?? '', /^postgres/)
    const age = config.maxConnectionAgeMs!
    assert.ok(age >= 50 * 60 * 1000, `age ${age} is close to the limit, so sockets are not cut needlessly often`)
    assert.ok(age * 1.1 < HOUR_MS, `age ${age} plus 10 % jitter stays under one hour`)
  })

  it('runs node directly so SIGTERM reaches the server, after gcp-build has built it', () => {
    assert.match(String(app.entrypoint), /^node dist\/server\/main\.js$/)
    assert.equal(pkg.scripts['gcp-build'], 'npm run build')
    assert.match(pkg.scripts.start!, /exec node dist\/server\/main\.js/)
  })

  describe('the server process', () => {
    let server: ServerProcess | null = null
    let dataDir = ''
    after(async () => {
      await server?.kill('SIGKILL')
      if (dataDir !== '') await rm(dataDir, { recursive: true, force: true })
    })

    it('listens on PORT, answers both health checks, and exits 0 on SIGTERM', async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'relay-deploy-'))
      const port = await freePort()
      server = await startServerProcess({ DATA_DIR: dataDir }, { port })
      assert.equal(server.port, port)
      assert.equal((await fetch(`${server.http}/liveness_check`)).status, 200)
      assert.equal((await fetch(`${server.http}/readiness_check`)).status, 200)
      assert.equal(await server.kill('SIGTERM'), 0)
    })
  })
})
