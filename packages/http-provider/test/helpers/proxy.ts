/**
 * A small forward proxy for tests: absolute-form requests (`GET http://host/path`) are relayed,
 * CONNECT opens a tunnel. It only ever connects to 127.0.0.1 and records what went through it.
 */
import { request as httpRequest, type Server } from 'node:http'
import { connect } from 'node:net'
import { startServer } from './servers.js'

export interface TestProxy {
  url: string
  /** `GET http://...` targets and `CONNECT host:port` lines seen. */
  seen: string[]
  server: Server
  close: () => Promise<void>
}

export async function startProxy (): Promise<TestProxy> {
  const seen: string[] = []
  const s = await startServer((req, res) => {
    let target: URL
    try { target = new URL(req.url ?? '') } catch { res.writeHead(400).end(); return }
    if (target.hostname !== '127.0.0.1') { res.writeHead(403).end(); return }
    seen.push(`${req.method ?? ''} ${target.toString()}`)
    const headers = { ...req.headers }
    delete headers['proxy-connection']
    delete headers['proxy-authorization']
    const upstream = httpRequest({ host: '127.0.0.1', port: target.port, path: target.pathname + target.search, method: req.method, headers }, up => {
      res.writeHead(up.statusCode ?? 502, up.headers)
      up.pipe(res)
    })
    upstream.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end() })
    req.pipe(upstream)
  })
  const tunnels = new Set<{ destroy: () => void }>()
  s.server.on('connect', (req, socket, head) => {
    tunnels.add(socket)
    socket.on('close', () => tunnels.delete(socket))
    const [host, port] = (req.url ?? '').split(':')
    if (host !== '127.0.0.1') { socket.end('HTTP/1.1 403 Forbidden\r\n\r\n'); return }
    seen.push(`CONNECT ${req.url ?? ''}`)
    const upstream = connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.pipe(socket)
      socket.pipe(upstream)
    })
    upstream.on('error', () => socket.destroy())
    socket.on('error', () => upstream.destroy())
  })
  // Tunnels are detached from the HTTP server, so closing it does not end them: do it here.
  const close = async (): Promise<void> => { for (const t of tunnels) t.destroy(); await s.close() }
  return { url: s.url.replace(/\/$/, ''), seen, server: s.server, close }
}
