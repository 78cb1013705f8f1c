/**
 * HttpProvider: fetches blocks from static mirrors and IPFS Trustless Gateways over HTTP(S).
 *
 * - Several mirrors, tried in order of preference and health (see health.ts).
 * - Raw blocks: `GET <base>/ipfs/<cid>?format=raw` with `Accept: application/vnd.ipld.raw`, which a
 *   static file server that ignores the query answers from the mirror layout.
 * - Whole DAGs: `getDag(root)` asks for a CAR (`?format=car&dag-scope=all`) so a gateway sends a
 *   package in one response; blocks are verified one by one, blocks nobody asked for are dropped,
 *   and whatever the CAR left out is fetched raw. A static mirror answers the CAR request with the
 *   root block's bytes, which are used as such, and the mirror is remembered as raw-only.
 * - Only the CID decides integrity: status, headers, content type and redirects are never trusted.
 */
import {
  CoreErrorCode, MAX_BLOCK_SIZE, SwarmpackError, assertSupportedCid, blockLinks, mirrorBlockPath,
  throwIfAborted, DAG_CBOR_CODEC, IDENTITY_CODE
} from '@swarmpack/core'
import type { ProvidedBlock, Provider, ProviderGetOptions } from '@swarmpack/core'
import { logger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent } from 'progress-events'
import type { Dispatcher } from 'undici'
import { discard, readCapped } from './body.js'
import { CarParser, decodeSectionCid, type RawCarSection } from './car-reader.js'
import { createDispatcher, type DispatcherOptions } from './dispatcher.js'
import { HttpErrorCode } from './errors.js'
import { DEFAULT_HEALTH, MirrorHealth, rankMirrors, type HealthOptions, type MirrorHealthSnapshot } from './health.js'
import { fetchCapped, statusError } from './request.js'
import { openStream } from './stream.js'
import { verifyBlockFast } from './verify.js'

const log = logger('swarmpack:http')

/** Body bytes queued for a CAR stream before the socket is paused. */
const STREAM_HIGH_WATER_MARK = 1024 * 1024

export const RAW_ACCEPT = 'application/vnd.ipld.raw'
export const CAR_ACCEPT = 'application/vnd.ipld.car; version=1; order=dfs; dups=n'

export interface MirrorConfig {
  /** Base URL: blocks are fetched from `<url>/ipfs/<cid>`. */
  url: string | URL
  /** Headers sent to this mirror only (e.g. `Authorization`). */
  headers?: Record<string, string>
  /** `false` to never ask this mirror for CARs (a plain static mirror). Default: learn it. */
  car?: boolean
}

export interface HttpProviderOptions extends DispatcherOptions {
  /** Mirrors in order of preference. */
  mirrors: Array<string | URL | MirrorConfig>
  /** Headers sent to every mirror. */
  headers?: Record<string, string>
  /** Deadline for one raw-block request, ms (default 15 s). For CAR streams it is the idle deadline. */
  timeoutMs?: number
  /** Extra rounds over the mirrors after a round where every mirror failed (default 2). */
  retries?: number
  /** First backoff between rounds, ms; doubles each round, with jitter (default 200). */
  retryDelayMs?: number
  /** Requests in flight in `getMany` and `getDag` (default 16). */
  concurrency?: number
  /** Largest block accepted, bytes (default and maximum MAX_BLOCK_SIZE). */
  maxBlockSize?: number
  /** Most bytes of blocks nobody asked for that a CAR may carry before the mirror is cut off (default 16 MiB). */
  maxUnwantedCarBytes?: number
  health?: HealthOptions
  /** Bring your own undici dispatcher (then proxy/tls/connection options are ignored). */
  dispatcher?: Dispatcher
}

export interface HttpProviderStats {
  requests: number
  carRequests: number
  bytes: number
  mirrors: MirrorHealthSnapshot[]
}

interface Mirror {
  health: MirrorHealth
  /** Base URL with a trailing slash, without credentials. */
  base: string
  headers: Record<string, string>
  car: boolean
}

function normalizeMirror (input: string | URL | MirrorConfig, index: number, opts: Required<HealthOptions>): Mirror {
  const config: MirrorConfig = typeof input === 'string' || input instanceof URL ? { url: input } : input
  let url: URL
  try {
    url = new URL(config.url.toString())
  } catch (err) {
    throw new SwarmpackError(HttpErrorCode.INVALID_CONFIG, `invalid mirror URL ${String(config.url)}`, { cause: err })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SwarmpackError(HttpErrorCode.INVALID_CONFIG, `mirror URL must be http(s): ${url.protocol}`)
  }
  const headers: Record<string, string> = { ...config.headers }
  if (url.username !== '' || url.password !== '') {
    // Credentials in the URL become a Basic header, so they never show in logs or progress events.
    const user = decodeURIComponent(url.username)
    const pass = decodeURIComponent(url.password)
    headers.authorization ??= `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
    url.username = ''
    url.password = ''
  }
  url.search = ''
  url.hash = ''
  if (!url.pathname.endsWith('/')) url.pathname += '/'
  const base = url.toString()
  return { health: new MirrorHealth(base, index, opts), base, headers, car: config.car ?? true }
}

/** A cheap map key for a CID: its bytes as a latin1 string (base32 `toString()` costs far more). */
export function cidKey (cid: CID): string {
  const b = cid.bytes
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}

/** The same key from a CID's encoded bytes, without decoding them. */
function bytesKey (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}

/** getDag's bookkeeping: blocks already handed out, and the links still to fetch. */
class DagWalk {
  readonly done = new Set<string>()
  readonly wanted: Map<string, CID>

  constructor (root: CID) {
    this.wanted = new Map([[cidKey(root), root]])
  }

  /** Marks a verified block done and queues the links it adds. */
  accept (key: string, cid: CID, bytes: Uint8Array): void {
    this.done.add(key)
    this.wanted.delete(key)
    if (cid.code !== DAG_CBOR_CODEC) return
    for (const link of blockLinks(cid, bytes)) {
      const k = cidKey(link)
      if (!this.done.has(k)) this.wanted.set(k, link)
    }
  }
}

function isIdentity (cid: CID): boolean {
  return cid.multihash.code === IDENTITY_CODE
}

function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clearTimeout(t); reject(new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted', { cause: signal?.reason })) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export class HttpProvider implements Provider {
  readonly name: string
  private readonly mirrors: Mirror[]
  private readonly dispatcher: Dispatcher
  private readonly ownsDispatcher: boolean
  private readonly headers: Record<string, string>
  private readonly timeoutMs: number
  private readonly retries: number
  private readonly retryDelayMs: number
  private readonly concurrency: number
  private readonly maxBlockSize: number
  private readonly maxUnwantedCarBytes: number
  private requests = 0
  private carRequests = 0
  private bytes = 0

  constructor (opts: HttpProviderOptions) {
    if (!Array.isArray(opts?.mirrors) || opts.mirrors.length === 0) {
      throw new SwarmpackError(HttpErrorCode.INVALID_CONFIG, 'HttpProvider needs at least one mirror URL')
    }
    const health = { ...DEFAULT_HEALTH, ...opts.health }
    this.mirrors = opts.mirrors.map((m, i) => normalizeMirror(m, i, health))
    this.name = `http:${this.mirrors.map(m => m.base).join(',')}`
    this.headers = { ...opts.headers }
    this.timeoutMs = opts.timeoutMs ?? 15_000
    this.retries = opts.retries ?? 2
    this.retryDelayMs = opts.retryDelayMs ?? 200
    this.concurrency = Math.max(1, opts.concurrency ?? 16)
    this.maxBlockSize = Math.min(opts.maxBlockSize ?? MAX_BLOCK_SIZE, MAX_BLOCK_SIZE)
    this.maxUnwantedCarBytes = opts.maxUnwantedCarBytes ?? 16 * 1024 * 1024
    this.ownsDispatcher = opts.dispatcher === undefined
    this.dispatcher = opts.dispatcher ?? createDispatcher({ connections: this.concurrency, ...opts })
  }

  /** Health and counters, for diagnostics and benchmarks. */
  stats (): HttpProviderStats {
    return { requests: this.requests, carRequests: this.carRequests, bytes: this.bytes, mirrors: this.mirrors.map(m => m.health.snapshot()) }
  }

  async get (cid: CID, options: ProviderGetOptions = {}): Promise<Uint8Array> {
    return (await this.fetchBlock(cid, options)).bytes
  }

  async has (cid: CID, options: ProviderGetOptions = {}): Promise<boolean> {
    assertSupportedCid(cid)
    if (isIdentity(cid)) return true
    for (const mirror of rankMirrors(this.mirrors.map(m => m.health)).map(h => this.mirrorOf(h))) {
      throwIfAborted(options.signal)
      try {
        this.requests++
        await fetchCapped(this.blockUrl(mirror, cid, 'raw'), 0, {
          dispatcher: this.dispatcher, method: 'HEAD', headers: this.headersFor(mirror, RAW_ACCEPT),
          timeoutMs: this.timeoutMs, signal: options.signal, source: mirror.base
        })
        return true
      } catch (err) {
        if ((err as SwarmpackError).code === CoreErrorCode.ABORTED) throw err
        if ((err as SwarmpackError).code !== CoreErrorCode.NOT_FOUND) mirror.health.recordFailure()
      }
    }
    return false
  }

  /**
   * Fetches one verified block, trying mirrors by rank. A 404 moves on to the next mirror; a
   * failure or bad data marks the mirror. Rounds repeat with backoff while some mirror failed for
   * a reason other than 404 or bad data.
   */
  async fetchBlock (cid: CID, options: ProviderGetOptions = {}): Promise<ProvidedBlock> {
    assertSupportedCid(cid)
    throwIfAborted(options.signal)
    if (isIdentity(cid)) return { cid, bytes: cid.multihash.digest, source: 'identity' }
    const excluded = new Set<Mirror>()
    const errors: Array<{ source: string, code: string, message: string }> = []
    for (let round = 0; round <= this.retries; round++) {
      if (round > 0) await sleep(this.retryDelayMs * 2 ** (round - 1) * (0.5 + Math.random() / 2), options.signal)
      const candidates = rankMirrors(this.mirrors.map(m => m.health)).map(h => this.mirrorOf(h)).filter(m => !excluded.has(m))
      if (candidates.length === 0) break
      for (const mirror of candidates) {
        throwIfAborted(options.signal)
        try {
          const bytes = await this.fetchRawFrom(mirror, cid, options.signal)
          options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid, size: bytes.byteLength, source: mirror.base }))
          return { cid, bytes, source: mirror.base }
        } catch (err) {
          const e = err as SwarmpackError
          if (e.code === CoreErrorCode.ABORTED) throw err
          errors.push({ source: mirror.base, code: e.code ?? 'ERR_UNKNOWN', message: e.message })
          if (e.code === CoreErrorCode.NOT_FOUND || e.code === CoreErrorCode.BLOCK_MISMATCH || e.code === HttpErrorCode.TOO_LARGE) excluded.add(mirror)
          log('%s from %s: %s', cid, mirror.base, e.message)
          options.onProgress?.(new CustomProgressEvent('swarmpack:provider:retry', { cid, source: mirror.base, error: e }))
        }
      }
    }
    if (errors.length > 0 && errors.every(e => e.code === CoreErrorCode.NOT_FOUND)) {
      throw new SwarmpackError(CoreErrorCode.NOT_FOUND, `${cid.toString()} not found on any mirror`, { details: { cid: cid.toString(), errors } })
    }
    throw new SwarmpackError(HttpErrorCode.ALL_MIRRORS_FAILED, `could not fetch ${cid.toString()} from any mirror`, { details: { cid: cid.toString(), errors } })
  }

  /** One raw-block request to one mirror, verified; records the mirror's health. */
  private async fetchRawFrom (mirror: Mirror, cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
    const started = performance.now()
    this.requests++
    let bytes: Uint8Array
    try {
      ({ bytes } = await fetchCapped(this.blockUrl(mirror, cid, 'raw'), this.maxBlockSize, {
        dispatcher: this.dispatcher, headers: this.headersFor(mirror, RAW_ACCEPT), timeoutMs: this.timeoutMs, signal, source: mirror.base
      }))
    } catch (err) {
      this.recordError(mirror, err as SwarmpackError)
      throw err
    }
    this.bytes += bytes.byteLength
    try {
      verifyBlockFast(cid, bytes)
    } catch (err) {
      mirror.health.recordBadData()
      log.error('%s served bad data for %s', mirror.base, cid)
      throw err
    }
    mirror.health.recordSuccess(performance.now() - started)
    return bytes
  }

  private recordError (mirror: Mirror, err: SwarmpackError): void {
    switch (err.code) {
      case CoreErrorCode.NOT_FOUND:
      case CoreErrorCode.ABORTED:
        return
      case HttpErrorCode.TOO_LARGE:
      case HttpErrorCode.BAD_CAR:
        mirror.health.recordBadData(); return
      case HttpErrorCode.TIMEOUT:
        mirror.health.recordTimeout(this.timeoutMs); return
      default:
        mirror.health.recordFailure()
    }
  }

  /**
   * Fetches many blocks concurrently, yielding each verified block as it arrives (any order).
   * Blocks no mirror can supply are skipped, as the Provider contract says.
   */
  async * getMany (cids: Iterable<CID> | AsyncIterable<CID>, options: ProviderGetOptions = {}): AsyncGenerator<ProvidedBlock> {
    const iterator = (Symbol.asyncIterator in cids ? cids[Symbol.asyncIterator]() : (cids as Iterable<CID>)[Symbol.iterator]()) as AsyncIterator<CID> | Iterator<CID>
    const inflight = new Map<number, Promise<{ id: number, block?: ProvidedBlock, error?: unknown }>>()
    let nextId = 0
    let exhausted = false
    const seen = new Set<string>()
    while (true) {
      while (!exhausted && inflight.size < this.concurrency) {
        const r = await iterator.next()
        if (r.done === true) { exhausted = true; break }
        const key = cidKey(r.value)
        if (seen.has(key)) continue
        seen.add(key)
        const id = nextId++
        inflight.set(id, this.fetchBlock(r.value, options).then(block => ({ id, block }), error => ({ id, error })))
      }
      if (inflight.size === 0) return
      const done = await Promise.race(inflight.values())
      inflight.delete(done.id)
      if (done.block !== undefined) {
        yield done.block
      } else if ((done.error as SwarmpackError)?.code === CoreErrorCode.ABORTED) {
        throw done.error
      } else {
        log('getMany skips a block: %s', (done.error as Error)?.message)
      }
    }
  }

  /**
   * Fetches every block of the DAG under `root` (root first, then in any order), each verified
   * against its CID, and throws if some block cannot be had from any mirror. One CAR request to a
   * gateway usually brings everything; the rest is fetched raw, `concurrency` at a time.
   */
  async * getDag (root: CID, options: ProviderGetOptions = {}): AsyncGenerator<ProvidedBlock> {
    assertSupportedCid(root)
    const dag = new DagWalk(root)

    // 1. One CAR request, to the best mirror that may speak CAR. It hands over verified blocks in
    // batches (one per body chunk), already accepted into the walk.
    const carMirror = rankMirrors(this.mirrors.map(m => m.health)).map(h => this.mirrorOf(h)).find(m => m.car && m.health.supportsCar !== false)
    if (carMirror !== undefined && !isIdentity(root)) {
      try {
        for await (const batch of this.carFrom(carMirror, root, dag, options)) {
          for (let i = 0; i < batch.length; i++) yield batch[i]
        }
      } catch (err) {
        if ((err as SwarmpackError).code === CoreErrorCode.ABORTED) throw err
        log('CAR from %s stopped: %s', carMirror.base, (err as Error).message)
      }
    }

    // 2. Whatever is still wanted comes raw, concurrently; new links join the queue as blocks arrive.
    const wanted = dag.wanted
    const inflight = new Map<string, Promise<{ key: string, block?: ProvidedBlock, error?: unknown }>>()
    while (true) {
      for (const [key, cid] of wanted) {
        if (inflight.size >= this.concurrency) break
        if (inflight.has(key)) continue
        inflight.set(key, this.fetchBlock(cid, options).then(block => ({ key, block }), error => ({ key, error })))
      }
      if (inflight.size === 0) return
      const r = await Promise.race(inflight.values())
      inflight.delete(r.key)
      if (r.block === undefined) {
        // Let the other requests settle quietly; the DAG is incomplete.
        for (const p of inflight.values()) p.catch(() => {})
        throw r.error
      }
      dag.accept(r.key, r.block.cid, r.block.bytes)
      yield r.block
    }
  }

  /**
   * Streams a CAR for `root` from one mirror, yielding batches of verified blocks the DAG reaches,
   * each accepted into `dag` before it is handed on. Blocks that arrive before their parent wait in
   * a small bounded buffer; anything else is dropped. If the stream fails, the blocks already
   * accepted are yielded before the error is thrown, so none is marked done without being seen.
   */
  private async * carFrom (mirror: Mirror, root: CID, dag: DagWalk, options: ProviderGetOptions): AsyncGenerator<ProvidedBlock[]> {
    const url = this.blockUrl(mirror, root, 'car')
    const started = performance.now()
    this.requests++
    this.carRequests++
    const res = await openStream(url, { dispatcher: this.dispatcher, headers: this.headersFor(mirror, CAR_ACCEPT), timeoutMs: this.timeoutMs, signal: options.signal, source: mirror.base, highWaterMark: STREAM_HIGH_WATER_MARK })
      .catch(err => { this.recordError(mirror, err); throw err })
    try {
      if (res.status < 200 || res.status > 299) {
        discard(res.body, true)
        const err = statusError(res.status, url, mirror.base)
        this.recordError(mirror, err)
        throw err
      }
      const type = String(res.headers['content-type'] ?? '').toLowerCase()
      if (!type.startsWith('application/vnd.ipld.car')) {
        // A static server: it ignored the query and sent the root block itself. The type only picks
        // the parser; the bytes still have to match the root CID.
        mirror.health.supportsCar = false
        const bytes = await readCapped(res.body, this.maxBlockSize, mirror.base)
        this.bytes += bytes.byteLength
        try { verifyBlockFast(root, bytes) } catch (err) { mirror.health.recordBadData(); throw err }
        mirror.health.recordSuccess(performance.now() - started)
        options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid: root, size: bytes.byteLength, source: mirror.base }))
        dag.accept(cidKey(root), root, bytes)
        yield [{ cid: root, bytes, source: mirror.base }]
        return
      }
      mirror.health.supportsCar = true
      const source = mirror.base
      const parser = new CarParser(source, this.maxBlockSize)
      const sections: RawCarSection[] = []
      const early = new Map<string, { cid: CID, bytes: Uint8Array }>()
      let earlyBytes = 0
      let unwanted = 0
      let first = true
      let batch: ProvidedBlock[] = []
      const take = (key: string, cid: CID, bytes: Uint8Array): void => {
        dag.accept(key, cid, bytes)
        options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid, size: bytes.byteLength, source }))
        batch.push({ cid, bytes, source })
      }
      const handle = (section: RawCarSection): void => {
        const bytes = section.bytes
        this.bytes += bytes.byteLength
        let key = bytesKey(section.cidBytes)
        if (dag.done.has(key)) return
        let cid = dag.wanted.get(key)
        if (cid === undefined) {
          // Not (yet) reachable: decode it, and re-check under its canonical bytes.
          cid = decodeSectionCid(section.cidBytes, source)
          key = cidKey(cid)
          if (dag.done.has(key)) return
          cid = dag.wanted.get(key) ?? cid
        }
        try {
          verifyBlockFast(cid, bytes)
        } catch (err) {
          if ((err as SwarmpackError).code === CoreErrorCode.UNSUPPORTED_CID) { unwanted += bytes.byteLength; return }
          mirror.health.recordBadData()
          log.error('%s sent a bad block %s in a CAR', source, cid)
          throw err
        }
        if (first) { mirror.health.recordSuccess(performance.now() - started); first = false }
        if (dag.wanted.has(key)) {
          take(key, cid, bytes)
          // Blocks that came early may be wanted now.
          let released = true
          while (released && early.size > 0) {
            released = false
            for (const [k, b] of early) {
              if (dag.wanted.has(k)) { early.delete(k); earlyBytes -= b.bytes.byteLength; released = true; take(k, b.cid, b.bytes) }
            }
          }
        } else if (earlyBytes + bytes.byteLength <= this.maxUnwantedCarBytes) {
          if (!early.has(key)) { early.set(key, { cid, bytes }); earlyBytes += bytes.byteLength }
        } else {
          unwanted += bytes.byteLength
          if (unwanted > this.maxUnwantedCarBytes) {
            mirror.health.recordBadData()
            throw new SwarmpackError(HttpErrorCode.TOO_LARGE, `${source} sent more than ${this.maxUnwantedCarBytes} bytes of unrequested blocks`, { details: { source } })
          }
        }
      }
      let failure: unknown
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          throwIfAborted(options.signal)
          parser.push(chunk, sections)
          try {
            for (let i = 0; i < sections.length; i++) handle(sections[i])
          } finally {
            sections.length = 0
          }
          if (batch.length > 0) {
            const out = batch
            batch = []
            yield out
          }
        }
        parser.end()
      } catch (err) {
        failure = err
      }
      // Blocks accepted before a failure still go out: the walk counts them as done.
      if (batch.length > 0) yield batch
      if (failure !== undefined) {
        if ((failure as SwarmpackError).code !== CoreErrorCode.BLOCK_MISMATCH) this.recordError(mirror, failure as SwarmpackError)
        throw failure
      }
      if (early.size > 0) log('dropped %d unrequested blocks from %s', early.size, source)
    } finally {
      discard(res.body)
      res.done()
    }
  }

  async close (): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close()
  }

  private mirrorOf (health: MirrorHealth): Mirror {
    return this.mirrors.find(m => m.health === health) as Mirror
  }

  private blockUrl (mirror: Mirror, cid: CID, format: 'raw' | 'car'): string {
    const path = mirrorBlockPath(cid)
    return format === 'raw' ? `${mirror.base}${path}?format=raw` : `${mirror.base}${path}?format=car&dag-scope=all&car-dups=n&car-order=dfs`
  }

  private headersFor (mirror: Mirror, accept: string): Record<string, string> {
    return { ...this.headers, ...mirror.headers, accept }
  }
}
