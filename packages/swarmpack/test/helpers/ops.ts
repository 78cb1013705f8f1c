/** Helpers for the operations tests: bounded waits, a static HTTP mirror, event capture. */
import { createServer, type Server } from 'node:http'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join, normalize } from 'node:path'
import type { AddressInfo } from 'node:net'

/** Polls `cond` until it returns a truthy value or `timeoutMs` passes (then throws naming `what`). */
export async function waitFor<T> (cond: () => T | Promise<T>, what: string, timeoutMs = 60_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await cond()
      if (v !== undefined && v !== null && v !== false) return v as NonNullable<T>
    } catch (err) { last = err }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last !== undefined ? ` (last error: ${(last as Error).message})` : ''}`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}

/** Collects the CustomEvents of `type` dispatched on `target`. */
export function collect<T = any> (target: EventTarget, type: string): T[] {
  const out: T[] = []
  target.addEventListener(type, (evt) => { out.push((evt as CustomEvent<T>).detail) })
  return out
}

export interface StaticServer { url: string, requests: string[], server: Server, close: () => Promise<void> }

/**
 * A static HTTP server over a mirror directory (what nginx does for a real mirror), on 127.0.0.1.
 * `dateOffsetMs` shifts its Date header (a server with a wrong clock).
 */
export async function startStaticServer (dir: string, options: { dateOffsetMs?: number } = {}): Promise<StaticServer> {
  const requests: string[] = []
  const server = createServer((req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`)
    const date = new Date(Date.now() + (options.dateOffsetMs ?? 0)).toUTCString()
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    const file = normalize(join(dir, path))
    if (!file.startsWith(dir)) { res.writeHead(403, { date }).end(); return }
    stat(file).then(st => {
      if (!st.isFile()) { res.writeHead(404, { date }).end(); return }
      res.writeHead(200, { date, 'content-length': st.size, 'content-type': 'application/octet-stream' })
      createReadStream(file).pipe(res)
    }, () => { res.writeHead(404, { date }).end() })
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    server,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}
