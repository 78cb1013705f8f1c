/**
 * Small real HTTP servers for tests, all on 127.0.0.1 and a free port: a static file server that
 * ignores query strings (like nginx serving a mirror directory), with hooks to misbehave, and a
 * generic server for hand-written faulty answers.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, normalize, sep } from 'node:path'

export interface TestServer {
  url: string
  port: number
  server: Server
  /** Paths requested, in order (with query strings). */
  requests: string[]
  close: () => Promise<void>
}

export async function startServer (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const requests: string[] = []
  const server = createServer((req, res) => { requests.push(req.url ?? ''); handler(req, res) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  let closed = false
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    server,
    requests,
    close: async () => {
      if (closed) return
      closed = true
      await new Promise<void>(resolve => { server.close(() => { resolve() }); server.closeAllConnections() })
    }
  }
}

export interface StaticServerOptions {
  /** Rewrites a file's bytes before sending (e.g. to corrupt one block). Return undefined to keep. */
  transform?: (urlPath: string, bytes: Buffer) => Buffer | undefined
}

/** Serves files under `root`, ignoring query strings; 404 for anything missing or outside root. */
export async function startStaticServer (root: string, opts: StaticServerOptions = {}): Promise<TestServer> {
  return await startServer((req, res) => {
    const urlPath = decodeURIComponent((req.url ?? '/').split('?')[0])
    const file = normalize(join(root, urlPath))
    if (!file.startsWith(root + sep)) { res.writeHead(404).end(); return }
    stat(file).then(async st => {
      if (!st.isFile()) { res.writeHead(404).end(); return }
      const headers = { 'content-type': 'application/octet-stream' }
      if (opts.transform !== undefined) {
        const bytes = await readFile(file)
        const out = opts.transform(urlPath, bytes) ?? bytes
        res.writeHead(200, { ...headers, 'content-length': out.byteLength })
        res.end(req.method === 'HEAD' ? undefined : out)
        return
      }
      res.writeHead(200, { ...headers, 'content-length': st.size })
      if (req.method === 'HEAD') { res.end(); return }
      createReadStream(file).pipe(res)
    }, () => { res.writeHead(404).end() })
  })
}
