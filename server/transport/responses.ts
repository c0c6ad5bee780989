/** How the HTTP routes answer: plain text or JSON, never cached, and the request path they route on. */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** A route handler: returns false when the request is not its to answer. */
export type RequestHandler = (request: IncomingMessage, response: ServerResponse) => Promise<boolean> | boolean

export const sendText = (response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void => {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers })
  response.end(`${text}\n`)
}

export const sendJson = (response: ServerResponse, status: number, value: unknown): void => {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
  response.end(JSON.stringify(value))
}

/** The path of a request URL without its query string. */
export const pathOf = (request: IncomingMessage): string => (request.url ?? '/').split('?')[0]!
