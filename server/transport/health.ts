import { pathOf, sendText, type RequestHandler } from './responses.js'

export interface HealthOptions {
  /** Whether this instance takes clients now: false while starting and draining. */
  readonly accepting: () => boolean
  /** Rejects when storage cannot be reached. */
  readonly checkStorage: () => Promise<void>
}

/**
 * `/healthz` and `/liveness_check` say the process works; `/readiness_check` says whether to send it
 * clients: 503 while starting, draining, or when storage does not answer within two seconds.
 */
export const healthRoutes = (options: HealthOptions): RequestHandler => async (request, response) => {
  const path = pathOf(request)
  if (path === '/healthz' || path === '/liveness_check') {
    sendText(response, 200, 'ok')
    return true
  }
  if (path !== '/readiness_check') return false
  if (!options.accepting()) {
    sendText(response, 503, 'not accepting clients (starting or draining)')
    return true
  }
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      options.checkStorage(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('storage check timed out')), 2000) }),
    ])
    sendText(response, 200, 'ready')
  } catch (error) {
    sendText(response, 503, `storage unavailable: ${(error as Error).message}`)
  } finally {
    clearTimeout(timer)
  }
  return true
}
