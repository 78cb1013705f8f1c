/**
 * The HTTP side of a serving node: a static mirror directory (core's layout: blocks, index heads,
 * the indexer card) served with serve-static, and, when a block store is given, the IPFS
 * trustless-gateway subset over it at `/ipfs/<cid>` (http-provider's handler). One port, so a
 * follower needs one URL. Behind nginx, serve the directory with nginx instead.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGatewayHandler } from '@swarmpack/http-provider'
import type { FsBlockstore } from '@swarmpack/core'
import serveStatic from 'serve-static'

export interface MirrorServerOptions {
  /** Static mirror directory to serve (optional). */
  dir?: string
  /** Block store to serve as a trustless gateway at /ipfs/ (optional). */
  blockstore?: FsBlockstore
  host?: string
  port?: number
}

export interface MirrorServer {
  url: string
  server: Server
  close: () => Promise<void>
}

export async function startMirrorServer (options: MirrorServerOptions): Promise<MirrorServer> {
  const gateway = options.blockstore !== undefined ? createGatewayHandler(options.blockstore as never) : undefined
  const files = options.dir !== undefined ? serveStatic(options.dir, { index: false, dotfiles: 'deny', fallthrough: false, etag: true }) : undefined
  const server = createServer({ keepAliveTimeout: 5000, headersTimeout: 10_000 }, (req, res) => {
    if (gateway !== undefined && req.url?.startsWith('/ipfs/') === true) { gateway(req, res); return }
    // a static directory holds raw blocks only: a CAR asked of it is a miss (as nginx answers), never raw bytes
    const wantsCar = /[?&]format=car(&|$)/.test(req.url ?? '') || (req.headers.accept ?? '').includes('application/vnd.ipld.car')
    if (files === undefined || wantsCar || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.statusCode = files === undefined || wantsCar ? 404 : 405
      res.end()
      return
    }
    files(req as never, res as never, (err?: { status?: number, statusCode?: number }) => {
      res.statusCode = err?.status ?? err?.statusCode ?? 404
      res.end()
    })
  })
  server.maxConnections = 256
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as AddressInfo).port
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host
  return {
    url: `http://${urlHost}:${port}/`,
    server,
    close: async () => new Promise<void>(resolve => { server.close(() => { resolve() }); server.closeAllConnections() })
  }
}
