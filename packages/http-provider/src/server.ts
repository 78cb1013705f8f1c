/**
 * A trustless-gateway subset over a block store, so any node can act as a mirror for a LAN:
 *
 *   GET|HEAD /ipfs/<cid>?format=raw            (or Accept: application/vnd.ipld.raw)  the block
 *   GET|HEAD /ipfs/<cid>?format=car&dag-scope=all|block  (or Accept: application/vnd.ipld.car)
 *   GET /ipfs/bafkqaaa?format=raw               the liveness probe: 200, empty body
 *
 * Only that one path shape is answered: no listings, no paths inside DAGs, no other files. CARs are
 * streamed block by block, waiting for the socket to drain, so a big DAG never sits in memory.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { logger } from '@libp2p/logger'
import type { Blockstore } from 'interface-blockstore'
import { IDENTITY_CODE } from '@swarmpack/core'
import { CID } from 'multiformats/cid'
import { carHeader, carSectionPrefix, readBlock, walkDag } from './car-writer.js'

const log = logger('swarmpack:http:server')

export interface GatewayServerOptions {
  blockstore: Blockstore
  /** Address to listen on (default 127.0.0.1). */
  host?: string
  /** Port (default 0: any free port). */
  port?: number
  /** Most open connections; more are refused (default 256). */
  maxConnections?: number
  /** Time allowed to receive a request's headers, ms (default 10 s). */
  headersTimeoutMs?: number
  /** Idle keep-alive connections are closed after this, ms (default 5 s). */
  keepAliveTimeoutMs?: number
}

export interface GatewayServer {
  /** Base URL, e.g. `http://127.0.0.1:38211/`. */
  url: string
  host: string
  port: number
  server: Server
  close: () => Promise<void>
}

type Format = 'raw' | 'car'

class HttpError extends Error {
  constructor (readonly status: number, message: string, readonly headers: Record<string, string> = {}) { super(message) }
}

function isNotFound (err: unknown): boolean {
  const e = err as { name?: string, code?: string }
  return e?.name === 'NotFoundError' || e?.code === 'ERR_NOT_FOUND'
}

/** Picks the response format from `?format=` (wins) or the Accept header. */
function chooseFormat (query: URLSearchParams, accept: string | undefined): Format {
  const format = query.get('format')
  if (format !== null) {
    if (format === 'raw' || format === 'car') return format
    throw new HttpError(400, `unsupported format ${JSON.stringify(format.slice(0, 40))}: use raw or car`)
  }
  if (accept === undefined || accept.trim() === '') return 'raw'
  for (const part of accept.split(',')) {
    const type = part.split(';')[0].trim().toLowerCase()
    if (type === 'application/vnd.ipld.raw' || type === 'application/octet-stream') return 'raw'
    if (type === 'application/vnd.ipld.car') {
      const version = /version=([^;\s]+)/i.exec(part)?.[1]
      if (version !== undefined && version !== '1') continue
      return 'car'
    }
    if (type === '*/*' || type === 'application/*') return 'raw'
  }
  throw new HttpError(406, 'not acceptable: this gateway answers application/vnd.ipld.raw and application/vnd.ipld.car; version=1')
}

function parsePath (rawUrl: string | undefined): { cid: CID, query: URLSearchParams } {
  if (rawUrl === undefined || !rawUrl.startsWith('/')) throw new HttpError(400, 'bad request target')
  const q = rawUrl.indexOf('?')
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q)
  const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1))
  // CIDs are plain alphanumerics: anything else (dot segments, encoded bytes, more segments) is refused.
  const m = /^\/ipfs\/([A-Za-z0-9]{1,256})\/?$/.exec(path)
  if (m === null) {
    if (path.startsWith('/ipfs/')) throw new HttpError(400, 'only /ipfs/<cid> is served (no paths, no listings)')
    throw new HttpError(404, 'not found')
  }
  try {
    return { cid: CID.parse(m[1]), query }
  } catch {
    throw new HttpError(400, 'invalid CID')
  }
}

function sendError (res: ServerResponse, err: HttpError, head: boolean): void {
  const body = `${err.message}\n`
  res.writeHead(err.status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-content-type-options': 'nosniff', ...err.headers })
  res.end(head ? undefined : body)
}

/** Waits until the response can take more data, or fails if the client went away. */
function drained (res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => { res.off('close', onClose); resolve() }
    const onClose = (): void => { res.off('drain', onDrain); reject(new Error('client closed the connection')) }
    res.once('drain', onDrain)
    res.once('close', onClose)
  })
}

/** Bytes of CAR sections gathered before one write to the socket. */
const CAR_BATCH = 256 * 1024
/** Blocks read from the store concurrently while walking a run of raw leaves. */
const CAR_READ_AHEAD = 16

async function serveRaw (store: Blockstore, cid: CID, res: ServerResponse, head: boolean, signal: AbortSignal): Promise<void> {
  let bytes: Uint8Array
  try {
    bytes = await readBlock(store, cid, signal)
  } catch (err) {
    if (isNotFound(err)) throw new HttpError(404, `block ${cid.toString()} not found`)
    throw err
  }
  res.writeHead(200, {
    'content-type': 'application/vnd.ipld.raw',
    'content-length': bytes.byteLength,
    'cache-control': 'public, max-age=29030400, immutable',
    etag: `"${cid.toString()}.raw"`,
    vary: 'Accept',
    'x-content-type-options': 'nosniff'
  })
  res.end(head ? undefined : bytes)
}

async function serveCar (store: Blockstore, cid: CID, query: URLSearchParams, res: ServerResponse, head: boolean, signal: AbortSignal): Promise<void> {
  const scope = query.get('dag-scope') ?? 'all'
  if (scope !== 'all' && scope !== 'block') throw new HttpError(400, `unsupported dag-scope ${JSON.stringify(scope.slice(0, 40))}: use all or block`)
  if (query.has('entity-bytes')) throw new HttpError(400, 'entity-bytes is not supported')
  const version = query.get('car-version')
  if (version !== null && version !== '1') throw new HttpError(400, 'only CAR version 1 is served')
  // The root must exist before we commit to a 200.
  const exists = cid.multihash.code === IDENTITY_CODE || await store.has(cid, { signal })
  if (!exists) throw new HttpError(404, `block ${cid.toString()} not found`)
  res.writeHead(200, {
    'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=n',
    'cache-control': 'public, max-age=29030400, immutable',
    etag: `"${cid.toString()}.car.${scope}"`,
    vary: 'Accept',
    'x-content-type-options': 'nosniff'
  })
  if (head) { res.end(); return }
  // Sections are gathered into one ~256 KiB buffer per write: one chunked-encoding frame and one
  // syscall for many small blocks (and far fewer body events for the client). After each write we
  // wait for the socket to drain, so at most two batches plus the socket buffer are held.
  const header = carHeader([cid])
  const parts: Uint8Array[] = [header]
  let batched = header.byteLength
  const flush = async (): Promise<void> => {
    const buf = Buffer.concat(parts, batched)
    parts.length = 0
    batched = 0
    if (!res.write(buf) && !res.destroyed) await drained(res)
  }
  try {
    for await (const block of walkDag(store, cid, scope, signal, CAR_READ_AHEAD)) {
      if (res.destroyed) throw new Error('client closed the connection')
      const prefix = carSectionPrefix(block.cid, block.bytes.byteLength)
      parts.push(prefix, block.bytes)
      batched += prefix.byteLength + block.bytes.byteLength
      if (batched >= CAR_BATCH) await flush()
    }
    if (parts.length > 0) await flush()
  } catch (err) {
    // Headers are gone: the only honest signal left is to cut the stream, so the client sees a broken CAR.
    log('CAR for %s cut short: %s', cid, (err as Error).message)
    res.destroy()
    return
  }
  res.end()
}

/** The request handler alone, to mount in an existing node:http server. */
export function createGatewayHandler (blockstore: Blockstore): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const head = req.method === 'HEAD'
    const controller = new AbortController()
    res.on('close', () => { controller.abort() })
    const handle = async (): Promise<void> => {
      if (req.method !== 'GET' && !head) throw new HttpError(405, 'method not allowed', { allow: 'GET, HEAD' })
      const { cid, query } = parsePath(req.url)
      const format = chooseFormat(query, req.headers.accept)
      if (format === 'raw') await serveRaw(blockstore, cid, res, head, controller.signal)
      else await serveCar(blockstore, cid, query, res, head, controller.signal)
    }
    handle().catch(err => {
      if (res.headersSent) { res.destroy(); return }
      if (err instanceof HttpError) { sendError(res, err, head); return }
      log.error('internal error on %s: %s', req.url, (err as Error).message)
      sendError(res, new HttpError(500, 'internal error'), head)
    })
  }
}

/** Starts an HTTP server answering the trustless-gateway subset from `blockstore`. */
export async function startGatewayServer (opts: GatewayServerOptions): Promise<GatewayServer> {
  const host = opts.host ?? '127.0.0.1'
  const server = createServer({ keepAliveTimeout: opts.keepAliveTimeoutMs ?? 5000, headersTimeout: opts.headersTimeoutMs ?? 10_000 }, createGatewayHandler(opts.blockstore))
  server.maxConnections = opts.maxConnections ?? 256
  server.maxHeadersCount = 64
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as AddressInfo).port
  const urlHost = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${urlHost}:${port}/`,
    host,
    port,
    server,
    close: async () => {
      await new Promise<void>(resolve => {
        server.close(() => { resolve() })
        server.closeAllConnections()
      })
    }
  }
}
