import { spawn, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { once, waitFor } from './wait.js'

const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'main.js')

/** The real server as a child process (`dist/server/main.js`), for kill -9 and SIGTERM tests. */
export interface ServerProcess {
  readonly child: ChildProcess
  readonly port: number
  readonly url: string
  readonly http: string
  /** Everything it logged, one parsed JSON object per line. */
  readonly logs: Array<Record<string, unknown>>
  /** Resolves with the exit code (or signal name) once the process has ended. */
  readonly exited: Promise<number | string>
  kill (signal?: NodeJS.Signals): Promise<number | string>
}

export const startServerProcess = async (env: Record<string, string>, { port = 0, startTimeoutMs = 15_000 }: { port?: number, startTimeoutMs?: number } = {}): Promise<ServerProcess> => {
  const child = spawn(process.execPath, [main], {
    // At least info: the "listening" line is how we learn the port.
    env: { ...process.env, HOST: '127.0.0.1', ...env, LOG_LEVEL: env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace' ? env.LOG_LEVEL : 'info', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Array<Record<string, unknown>> = []
  let buffered = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    let newline
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      try { logs.push(JSON.parse(line)) } catch { logs.push({ message: line }) }
    }
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)))
  let listening: Record<string, unknown>
  try {
    listening = await Promise.race([
      waitFor(() => logs.find((l) => typeof l.port === 'number' && String(l.message).startsWith('listening')), { timeoutMs: startTimeoutMs, message: 'server start' }),
      exited.then((code) => { throw new Error(`server exited with ${code} before listening: ${stderr}`) }),
    ])
  } catch (error) {
    // A process that did not start in time must not start later, on a port someone else now expects.
    child.kill('SIGKILL')
    const said = logs.slice(-5).map((line) => String(line.message)).join(' | ')
    throw new Error(`${(error as Error).message}${said === '' ? '' : ` (its last log lines: ${said})`}`)
  }
  const actual = listening.port as number
  return {
    child,
    port: actual,
    url: `ws://127.0.0.1:${actual}`,
    http: `http://127.0.0.1:${actual}`,
    logs,
    exited,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

export { once }
