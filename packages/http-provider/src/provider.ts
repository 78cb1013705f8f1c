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
  CoreErrorCode, HashErrorCode, MAX_BLOCK_SIZE, SwarmpackError, assertSupportedCid, blockLinks, mirrorBlockPath,
  DAG_CBOR_CODEC, IDENTITY_CODE
} from '@swarmpack/core'
import type { ProvidedBlock, Provider, ProviderGetOptions } from '@swarmpack/core'
import { logger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent } from 'progress-events'
import type { Dispatcher } from 'undici'
import { discard, readCapped, type DestroyableBody } from './body.js'
import { CallSignal } from './call-signal.js'
import { CarParser, decodeSectionCid, type RawCarSection } from './car-reader.js'
import { createDispatcher, type DispatcherOptions } from './dispatcher.js'
import { decodeBody } from './encoding.js'
import { HttpErrorCode } from './errors.js'
import { DEFAULT_HEALTH, MirrorHealth, rankMirrors, type HealthOptions, type MirrorHealthSnapshot } from './health.js'
import { RootMemory, type RootRecord } from './root-memory.js'
import { SectionHasher, type HashedSection, type HashWorkerMode } from './section-hasher.js'
import { DEFAULT_MAX_RETRY_AFTER_MS, fetchCapped, statusError } from './request.js'
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
  /**
   * Deadline for one raw-block request, ms (default 15 s). For CAR streams it is the idle deadline
   * and the window over which `minBytesPerSecond` is checked.
   */
  timeoutMs?: number
  /**
   * Optional cap on how many times one call re-asks a mirror that failed (default: no cap; retries
   * are bounded by `retryBudgetMs`, per mirror).
   */
  retries?: number
  /** Shortest wait before re-asking a mirror that failed, ms, even if its `Retry-After` says 0 (default 200). */
  retryDelayMs?: number
  /**
   * How long calls keep waiting for a failing mirror to come back, ms, counted from the first
   * failure of its outage (shared by every block and call; default 30 s). Past it, calls stop
   * waiting and fail over or fail; the mirror is still asked again when its cool-down ends.
   */
  retryBudgetMs?: number
  /** Longest `Retry-After` honoured, ms (default 30 s); a longer one is treated as this. */
  maxRetryAfterMs?: number
  /**
   * Slowest transfer accepted on a CAR stream, bytes/s, measured over `timeoutMs` windows
   * (default 16 KiB/s; 0 disables). A slower mirror is cut off, marked unhealthy and the CAR is
   * asked of the next mirror.
   */
  minBytesPerSecond?: number
  /** Requests in flight in `getMany` and `getDag` (default 16). */
  concurrency?: number
  /** Largest block accepted, bytes (default and maximum MAX_BLOCK_SIZE). */
  maxBlockSize?: number
  /** Most bytes of blocks nobody asked for that a CAR may carry before the mirror is cut off (default 16 MiB). */
  maxUnwantedCarBytes?: number
  health?: HealthOptions
  /** Bring your own undici dispatcher (then proxy/tls/connection options are ignored). */
  dispatcher?: Dispatcher
  /**
   * SHA-256 of CAR blocks in a worker thread (`true`), on the calling thread (`false`), or
   * (`'auto'`, the default) in a worker for a CAR of at least 16 MiB when a core is free (see
   * `hashWorkerPays`). Every block is verified before it is handed out either way.
   */
  hashWorker?: HashWorkerMode
}

/** Options of HttpProvider's calls: core's, plus a hint naming the package the blocks belong to. */
export interface HttpGetOptions extends ProviderGetOptions {
  /**
   * The package root these blocks belong to: mirrors that lacked other blocks of it are asked last
   * (`getDag` does this by itself).
   */
  root?: CID
}

export interface HttpProviderStats {
  requests: number
  carRequests: number
  /** CAR streams whose blocks were hashed in a worker thread. */
  hashWorkers: number
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
  /** Bytes of the blocks done so far. */
  doneBytes = 0

  constructor (root: CID) {
    this.wanted = new Map([[cidKey(root), root]])
  }

  /** Marks a verified block done and queues the links it adds. */
  accept (key: string, cid: CID, bytes: Uint8Array): void {
    this.done.add(key)
    this.wanted.delete(key)
    this.doneBytes += bytes.byteLength
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


/** Where a block request stands in one call: mirrors ruled out for it and attempts per mirror. */
interface BlockContext {
  /** The package root the block belongs to (for the memory of misses), as a map key. */
  root?: string
}

type AttemptError = { source: string, code: string, message: string }

export class HttpProvider implements Provider {
  readonly name: string
  private readonly mirrors: Mirror[]
  private readonly dispatcher: Dispatcher
  private readonly ownsDispatcher: boolean
  private readonly headers: Record<string, string>
  private readonly timeoutMs: number
  private readonly retries: number
  private readonly retryDelayMs: number
  private readonly retryBudgetMs: number
  private readonly maxRetryAfterMs: number
  private readonly minBytesPerSecond: number
  private readonly concurrency: number
  private readonly maxBlockSize: number
  private readonly maxUnwantedCarBytes: number
  private readonly hashWorker: HashWorkerMode
  private hashWorkers = 0
  private readonly memory = new RootMemory<Mirror>()
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
    this.retries = opts.retries ?? Infinity
    this.retryDelayMs = opts.retryDelayMs ?? 200
    this.retryBudgetMs = opts.retryBudgetMs ?? 30_000
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS
    this.minBytesPerSecond = opts.minBytesPerSecond ?? 16 * 1024
    this.concurrency = Math.max(1, opts.concurrency ?? 16)
    this.maxBlockSize = Math.min(opts.maxBlockSize ?? MAX_BLOCK_SIZE, MAX_BLOCK_SIZE)
    this.maxUnwantedCarBytes = opts.maxUnwantedCarBytes ?? 16 * 1024 * 1024
    this.hashWorker = opts.hashWorker ?? 'auto'
    this.ownsDispatcher = opts.dispatcher === undefined
    this.dispatcher = opts.dispatcher ?? createDispatcher({ connections: this.concurrency, ...opts })
  }

  /** Health and counters, for diagnostics and benchmarks. */
  stats (): HttpProviderStats {
    return { requests: this.requests, carRequests: this.carRequests, hashWorkers: this.hashWorkers, bytes: this.bytes, mirrors: this.mirrors.map(m => m.health.snapshot()) }
  }

  async get (cid: CID, options: HttpGetOptions = {}): Promise<Uint8Array> {
    return (await this.fetchBlock(cid, options)).bytes
  }

  async has (cid: CID, options: HttpGetOptions = {}): Promise<boolean> {
    assertSupportedCid(cid)
    if (isIdentity(cid)) return true
    const call = new CallSignal(options.signal)
    try {
      for (const mirror of this.ranked(this.memoryOf(options.root === undefined ? undefined : cidKey(options.root)))) {
        call.throwIfAborted()
        if (mirror.health.isResting()) continue
        const started = Date.now()
        try {
          this.requests++
          await fetchCapped(this.blockUrl(mirror, cid, 'raw'), 0, {
            dispatcher: this.dispatcher, method: 'HEAD', headers: this.headersFor(mirror, RAW_ACCEPT),
            timeoutMs: this.timeoutMs, call, source: mirror.base, maxRetryAfterMs: this.maxRetryAfterMs
          })
          return true
        } catch (err) {
          if ((err as SwarmpackError).code === CoreErrorCode.ABORTED) throw err
          this.recordError(mirror, err as SwarmpackError, started)
        }
      }
      return false
    } finally {
      call.dispose()
    }
  }

  /**
   * Fetches one verified block. Mirrors are asked one at a time by rank: a 404 or bad bytes rule a
   * mirror out for this block; a failure (5xx, 429, network error, timeout) makes it rest for its
   * cool-down or `Retry-After`. When every mirror still in the running rests, the call waits for the
   * first to wake, within that mirror's retry budget, then asks again.
   */
  async fetchBlock (cid: CID, options: HttpGetOptions = {}): Promise<ProvidedBlock> {
    const call = new CallSignal(options.signal)
    try {
      return await this.fetchBlockIn(cid, options, call, { root: options.root === undefined ? undefined : cidKey(options.root) })
    } finally {
      call.dispose()
    }
  }

  private async fetchBlockIn (cid: CID, options: ProviderGetOptions, call: CallSignal, ctx: BlockContext): Promise<ProvidedBlock> {
    assertSupportedCid(cid)
    call.throwIfAborted()
    if (isIdentity(cid)) return { cid, bytes: cid.multihash.digest, source: 'identity' }
    const ruledOut = new Set<Mirror>()
    const attempts = new Map<Mirror, number>()
    const errors: AttemptError[] = []
    const known = ctx.root === undefined ? undefined : this.memory.entry(ctx.root)
    while (true) {
      call.throwIfAborted()
      const now = Date.now()
      // Still in the running: not ruled out, under the optional per-call cap, and not a mirror this
      // call already asked whose outage has outlasted the retry budget.
      const open = this.ranked(known).filter(m => {
        const n = attempts.get(m) ?? 0
        const since = m.health.failingSince
        return !ruledOut.has(m) && n <= this.retries && !(n > 0 && since !== undefined && now - since > this.retryBudgetMs)
      })
      if (open.length === 0) break
      const awake = open.filter(m => !m.health.isResting(now))
      if (awake.length === 0) {
        // Everyone left is resting: wait for the first to wake, if its outage is within budget.
        const next = open
          .filter(m => m.health.downUntil - (m.health.failingSince ?? now) <= this.retryBudgetMs)
          .sort((a, b) => a.health.downUntil - b.health.downUntil)[0]
        if (next === undefined) break
        await call.sleep(next.health.downUntil - now + Math.random() * 20)
        continue
      }
      // A mirror whose probe is in flight (another request checking whether it is back) is skipped;
      // if only such mirrors are left, wait for the first probe's answer.
      const free = awake.filter(m => m.health.probe === undefined)
      if (free.length === 0) {
        await call.wait(awake[0].health.probe as Promise<void>)
        continue
      }
      // A mirror not yet known to have this package or not, whose first request for it is in
      // flight, is skipped while another can answer.
      const unknown = (m: Mirror): boolean => known !== undefined && !known.hits.has(m) && !known.misses.has(m)
      const mirror = free.find(m => !unknown(m) || !(known as RootRecord<Mirror>).pending.has(m)) ?? free[0]
      const first = unknown(mirror) && !(known as RootRecord<Mirror>).pending.has(mirror)
      if (first) known?.pending.add(mirror)
      try {
        const bytes = await this.asProbe(mirror, async () => await this.fetchRawFrom(mirror, cid, call))
        known?.hits.add(mirror)
        options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid, size: bytes.byteLength, source: mirror.base }))
        return { cid, bytes, source: mirror.base }
      } catch (err) {
        const e = err as SwarmpackError
        if (e.code === CoreErrorCode.ABORTED) throw err
        attempts.set(mirror, (attempts.get(mirror) ?? 0) + 1)
        errors.push({ source: mirror.base, code: e.code ?? 'ERR_UNKNOWN', message: e.message })
        if (e.code === CoreErrorCode.NOT_FOUND) {
          ruledOut.add(mirror)
          known?.misses.add(mirror)
        } else if (e.code === CoreErrorCode.BLOCK_MISMATCH || e.code === HttpErrorCode.TOO_LARGE || e.code === CoreErrorCode.UNSUPPORTED_CID) {
          ruledOut.add(mirror)
        }
        log('%s from %s: %s', cid, mirror.base, e.message)
        options.onProgress?.(new CustomProgressEvent('swarmpack:provider:retry', { cid, source: mirror.base, error: e }))
      } finally {
        if (first) known?.pending.delete(mirror)
      }
    }
    // Mirrors this call could not ask (resting past their retry budget) may still have the block:
    // then it is not a miss but a failure, and the details say so.
    for (const m of this.mirrors) {
      if (!ruledOut.has(m) && !attempts.has(m)) {
        errors.push({ source: m.base, code: HttpErrorCode.MIRROR_RESTING, message: `${m.base} is resting after failures until ${new Date(m.health.downUntil).toISOString()}` })
      }
    }
    if (errors.length > 0 && errors.every(e => e.code === CoreErrorCode.NOT_FOUND)) {
      throw new SwarmpackError(CoreErrorCode.NOT_FOUND, `${cid.toString()} not found on any mirror`, { details: { cid: cid.toString(), errors } })
    }
    throw new SwarmpackError(HttpErrorCode.ALL_MIRRORS_FAILED, `could not fetch ${cid.toString()} from any mirror`, { details: { cid: cid.toString(), errors } })
  }

  /**
   * Runs `work` against a mirror; if the mirror has been failing, this request is its probe and
   * other requests wait for it (see `fetchBlockIn`). Must be called without awaiting in between the
   * check for a probe and this call.
   */
  private async asProbe<T> (mirror: Mirror, work: () => Promise<T>): Promise<T> {
    if (mirror.health.consecutiveFailures === 0) return await work()
    const p = work()
    const settled = p.then(() => {}, () => {})
    mirror.health.probe = settled
    try {
      return await p
    } finally {
      if (mirror.health.probe === settled) mirror.health.probe = undefined
    }
  }

  /** One raw-block request to one mirror, verified; records the mirror's health. */
  private async fetchRawFrom (mirror: Mirror, cid: CID, call: CallSignal): Promise<Uint8Array> {
    const started = Date.now()
    this.requests++
    let bytes: Uint8Array
    try {
      ({ bytes } = await fetchCapped(this.blockUrl(mirror, cid, 'raw'), this.maxBlockSize, {
        dispatcher: this.dispatcher, headers: this.headersFor(mirror, RAW_ACCEPT), timeoutMs: this.timeoutMs, call, source: mirror.base, maxRetryAfterMs: this.maxRetryAfterMs
      }))
    } catch (err) {
      this.recordError(mirror, err as SwarmpackError, started)
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
    mirror.health.recordSuccess(Date.now() - started)
    return bytes
  }

  private recordError (mirror: Mirror, err: SwarmpackError, startedAt: number): void {
    switch (err.code) {
      case CoreErrorCode.NOT_FOUND:
        mirror.health.recordAnswer(startedAt); return
      case CoreErrorCode.ABORTED:
        return
      case CoreErrorCode.BLOCK_MISMATCH:
      case HttpErrorCode.TOO_LARGE:
      case HttpErrorCode.BAD_CAR:
        mirror.health.recordBadData(); return
      case HttpErrorCode.TIMEOUT:
        mirror.health.recordTimeout(this.timeoutMs, startedAt); return
      default: {
        const retryAfterMs = (err.details as { retryAfterMs?: number } | undefined)?.retryAfterMs
        mirror.health.recordFailure(startedAt, retryAfterMs === undefined ? undefined : Math.max(retryAfterMs, this.retryDelayMs))
      }
    }
  }

  /**
   * Fetches many blocks concurrently, yielding each verified block as it arrives (any order).
   * Blocks no mirror can supply are skipped, as the Provider contract says.
   */
  async * getMany (cids: Iterable<CID> | AsyncIterable<CID>, options: HttpGetOptions = {}): AsyncGenerator<ProvidedBlock> {
    const iterator = (Symbol.asyncIterator in cids ? cids[Symbol.asyncIterator]() : (cids as Iterable<CID>)[Symbol.iterator]()) as AsyncIterator<CID> | Iterator<CID>
    const call = new CallSignal(options.signal)
    const ctx: BlockContext = { root: options.root === undefined ? undefined : cidKey(options.root) }
    const inflight = new Map<number, Promise<{ id: number, block?: ProvidedBlock, error?: unknown }>>()
    let nextId = 0
    let exhausted = false
    const seen = new Set<string>()
    try {
      while (true) {
        while (!exhausted && inflight.size < this.concurrency) {
          const r = await iterator.next()
          if (r.done === true) { exhausted = true; break }
          const key = cidKey(r.value)
          if (seen.has(key)) continue
          seen.add(key)
          const id = nextId++
          inflight.set(id, this.fetchBlockIn(r.value, options, call, ctx).then(block => ({ id, block }), error => ({ id, error })))
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
    } finally {
      // Stopped early (abort, error or the consumer left): cancel what is still in flight.
      if (inflight.size > 0) call.cancel()
      call.dispose()
    }
  }

  /**
   * Fetches every block of the DAG under `root` (root first, then in any order), each verified
   * against its CID. A CAR request to a gateway usually brings everything; if it fails or is too
   * slow the next mirror that may speak CAR is asked; the rest is fetched raw, `concurrency` at a
   * time. Blocks that cannot be had do not stop the walk: every block that can be had is yielded,
   * and then the call throws ERR_NOT_FOUND (every mirror answered 404) or ERR_HTTP_ALL_MIRRORS_FAILED,
   * with `details.missing` (CIDs, at most 100) and `details.missingCount`.
   */
  async * getDag (root: CID, options: ProviderGetOptions = {}): AsyncGenerator<ProvidedBlock> {
    assertSupportedCid(root)
    const call = new CallSignal(options.signal)
    const inflight = new Map<string, Promise<{ key: string, block?: ProvidedBlock, error?: unknown }>>()
    try {
      call.throwIfAborted()
      const dag = new DagWalk(root)
      const ctx: BlockContext = { root: cidKey(root) }

      // 1. CARs: the best mirror that may speak CAR, then the next while one fails, is too slow, or
      // is a static server (which sends the root block only). Blocks come in batches, already accepted.
      const tried = new Set<Mirror>()
      while (!isIdentity(root) && dag.wanted.size > 0) {
        const known = this.memoryOf(ctx.root)
        const carMirror = this.ranked(known).find(m => m.car && m.health.supportsCar !== false && !tried.has(m) && known?.misses.has(m) !== true && known?.noCar.has(m) !== true && !m.health.isResting())
        if (carMirror === undefined) break
        tried.add(carMirror)
        try {
          for await (const batch of this.carFrom(carMirror, root, dag, options, call)) {
            for (let i = 0; i < batch.length; i++) yield batch[i]
          }
          if (carMirror.health.supportsCar === true) break // a whole CAR: what it left out comes raw
        } catch (err) {
          const e = err as SwarmpackError
          if (e.code === CoreErrorCode.ABORTED) throw err
          // Not a miss (a static mirror may hold the blocks without a CAR of them), but not worth asking again.
          if (e.code === CoreErrorCode.NOT_FOUND) this.memory.noCar(ctx.root as string, carMirror)
          log('CAR from %s stopped: %s', carMirror.base, e.message)
        }
      }

      // 2. Whatever is still wanted comes raw, concurrently; new links join the queue as blocks arrive.
      const wanted = dag.wanted
      const failed = new Map<string, { cid: CID, error: SwarmpackError }>()
      while (true) {
        for (const [key, cid] of wanted) {
          if (inflight.size >= this.concurrency) break
          if (inflight.has(key) || failed.has(key)) continue
          inflight.set(key, this.fetchBlockIn(cid, options, call, ctx).then(block => ({ key, block }), error => ({ key, error })))
        }
        if (inflight.size === 0) break
        const r = await Promise.race(inflight.values())
        inflight.delete(r.key)
        if (r.block === undefined) {
          const e = r.error as SwarmpackError
          if (e?.code === CoreErrorCode.ABORTED) throw e
          failed.set(r.key, { cid: wanted.get(r.key) as CID, error: e })
          continue
        }
        dag.accept(r.key, r.block.cid, r.block.bytes)
        yield r.block
      }
      if (failed.size > 0) {
        const all = [...failed.values()]
        const notFound = all.every(f => f.error?.code === CoreErrorCode.NOT_FOUND)
        throw new SwarmpackError(notFound ? CoreErrorCode.NOT_FOUND : HttpErrorCode.ALL_MIRRORS_FAILED,
          `${failed.size} block(s) of ${root.toString()} ${notFound ? 'not found on any mirror' : 'could not be fetched'}`, {
            details: {
              root: root.toString(),
              missing: all.slice(0, 100).map(f => f.cid.toString()),
              missingCount: all.length,
              errors: all.slice(0, 10).map(f => ({ cid: f.cid.toString(), code: f.error?.code, message: f.error?.message, details: f.error?.details }))
            }
          })
      }
    } finally {
      if (inflight.size > 0) {
        call.cancel()
        for (const p of inflight.values()) p.catch(() => {})
      }
      call.dispose()
    }
  }

  /**
   * Streams a CAR for `root` from one mirror, yielding batches of verified blocks the DAG reaches,
   * each accepted into `dag` before it is handed on. Blocks that arrive before their parent wait in
   * a small bounded buffer; anything else is dropped. Every byte that brings nothing new (a block
   * already done, sent twice, unrequested, or of an unsupported kind) counts against
   * `maxUnwantedCarBytes`, plus the bytes already done before this request (a CAR from the next
   * mirror legitimately repeats those); past that the mirror is cut off. If the stream fails, the
   * blocks already accepted are yielded before the error is thrown, so none is marked done without
   * being seen.
   */
  private async * carFrom (mirror: Mirror, root: CID, dag: DagWalk, options: ProviderGetOptions, call: CallSignal): AsyncGenerator<ProvidedBlock[]> {
    const url = this.blockUrl(mirror, root, 'car')
    const started = Date.now()
    const wasteBudget = this.maxUnwantedCarBytes + dag.doneBytes
    this.requests++
    this.carRequests++
    const res = await openStream(url, {
      dispatcher: this.dispatcher, headers: this.headersFor(mirror, CAR_ACCEPT), timeoutMs: this.timeoutMs, call, source: mirror.base,
      highWaterMark: STREAM_HIGH_WATER_MARK, minBytesPerSecond: this.minBytesPerSecond
    }).catch(err => { this.recordError(mirror, err, started); throw err })
    let body: DestroyableBody = res.body
    let hasher: SectionHasher | undefined
    try {
      if (res.status < 200 || res.status > 299) {
        discard(res.body, true)
        const err = statusError(res.status, url, mirror.base, res.headers, this.maxRetryAfterMs)
        this.recordError(mirror, err, started)
        throw err
      }
      try {
        body = decodeBody(res.body, res.headers['content-encoding'], mirror.base)
      } catch (err) {
        this.recordError(mirror, err as SwarmpackError, started)
        throw err
      }
      const type = String(res.headers['content-type'] ?? '').toLowerCase()
      if (!type.startsWith('application/vnd.ipld.car')) {
        // A static server: it ignored the query and sent the root block itself. The type only picks
        // the parser; the bytes still have to match the root CID. Same whole-request deadline as a
        // raw block, so a trickling server cannot hold the call.
        mirror.health.supportsCar = false
        const bytes = await this.readRootBlock(mirror, body, started, root)
        mirror.health.recordSuccess(Date.now() - started)
        this.memory.hit(cidKey(root), mirror)
        if (dag.done.has(cidKey(root))) return
        options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid: root, size: bytes.byteLength, source: mirror.base }))
        dag.accept(cidKey(root), root, bytes)
        yield [{ cid: root, bytes, source: mirror.base }]
        return
      }
      mirror.health.supportsCar = true
      const source = mirror.base
      const parser = new CarParser(source, this.maxBlockSize)
      const sections: RawCarSection[] = []
      const hashed: HashedSection[] = []
      const length = Number(res.headers['content-length'])
      hasher = new SectionHasher(this.hashWorker, call, Number.isSafeInteger(length) ? length : 0)
      if (hasher.usedWorker) this.hashWorkers++
      const early = new Map<string, { cid: CID, bytes: Uint8Array }>()
      let earlyBytes = 0
      let waste = 0
      let first = true
      let batch: ProvidedBlock[] = []
      const take = (key: string, cid: CID, bytes: Uint8Array): void => {
        dag.accept(key, cid, bytes)
        options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid, size: bytes.byteLength, source }))
        batch.push({ cid, bytes, source })
      }
      const checkWaste = (): void => {
        if (waste + earlyBytes > wasteBudget) {
          throw new SwarmpackError(HttpErrorCode.TOO_LARGE, `${source} sent more than ${wasteBudget} bytes that brought nothing new (repeated or unrequested blocks)`, { details: { source, cap: wasteBudget } })
        }
      }
      const handle = (section: HashedSection): void => {
        const bytes = section.bytes
        this.bytes += bytes.byteLength
        let key = bytesKey(section.cidBytes)
        if (dag.done.has(key)) { waste += bytes.byteLength; checkWaste(); return }
        let cid = dag.wanted.get(key)
        if (cid === undefined) {
          // Not (yet) reachable: decode it, and re-check under its canonical bytes.
          cid = decodeSectionCid(section.cidBytes, source)
          key = cidKey(cid)
          if (dag.done.has(key) || early.has(key)) { waste += bytes.byteLength; checkWaste(); return }
          cid = dag.wanted.get(key) ?? cid
        }
        try {
          verifyBlockFast(cid, bytes, section.digest)
        } catch (err) {
          if ((err as SwarmpackError).code === CoreErrorCode.UNSUPPORTED_CID) { waste += bytes.byteLength; checkWaste(); return }
          mirror.health.recordBadData()
          log.error('%s sent a bad block %s in a CAR', source, cid)
          throw err
        }
        if (first) { mirror.health.recordSuccess(Date.now() - started); this.memory.hit(cidKey(root), mirror); first = false }
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
        } else {
          // Held in case its parent comes later; it counts as waste until then.
          early.set(key, { cid, bytes })
          earlyBytes += bytes.byteLength
          checkWaste()
        }
      }
      let failure: unknown
      try {
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          call.throwIfAborted()
          parser.push(chunk, sections)
          const worked = hasher.usedWorker
          hasher.add(sections, chunk.byteLength)
          if (!worked && hasher.usedWorker) this.hashWorkers++
          sections.length = 0
          await hasher.take(hashed)
          try {
            for (let i = 0; i < hashed.length; i++) handle(hashed[i])
          } finally {
            hashed.length = 0
          }
          if (batch.length > 0) {
            const out = batch
            batch = []
            yield out
          }
        }
        // The sections still with the worker first, so a truncated CAR keeps its complete blocks
        // as on the calling thread. (If the stream fails mid-way, those batches are dropped and
        // their blocks fetched again.)
        await hasher.take(hashed, true)
        for (let i = 0; i < hashed.length; i++) handle(hashed[i])
        parser.end()
      } catch (err) {
        failure = err
      }
      // Blocks accepted before a failure still go out: the walk counts them as done.
      if (batch.length > 0) yield batch
      if (failure !== undefined) {
        const code = (failure as SwarmpackError).code
        // A bad block is recorded as bad data; our own hash worker failing is not the mirror's doing.
        if (code !== CoreErrorCode.BLOCK_MISMATCH && code !== HashErrorCode.WORKER) this.recordError(mirror, failure as SwarmpackError, started)
        throw failure
      }
      if (early.size > 0) log('dropped %d unrequested blocks from %s', early.size, source)
    } finally {
      discard(body)
      res.done()
      await hasher?.close()
    }
  }

  /** Reads a static mirror's answer to a CAR request (the root block) within `timeoutMs` of `started`, verified. */
  private async readRootBlock (mirror: Mirror, body: DestroyableBody, started: number, root: CID): Promise<Uint8Array> {
    const timer = setTimeout(() => {
      body.destroy?.(new SwarmpackError(HttpErrorCode.TIMEOUT, `${mirror.base} did not send the root block within ${this.timeoutMs} ms`, { details: { source: mirror.base } }))
    }, Math.max(0, started + this.timeoutMs - Date.now()))
    let bytes: Uint8Array
    try {
      bytes = await readCapped(body, this.maxBlockSize, mirror.base)
    } catch (err) {
      this.recordError(mirror, err as SwarmpackError, started)
      throw err
    } finally {
      clearTimeout(timer)
    }
    this.bytes += bytes.byteLength
    try { verifyBlockFast(root, bytes) } catch (err) { mirror.health.recordBadData(); throw err }
    return bytes
  }

  async close (): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close()
  }

  /**
   * Mirrors by health rank. With what is known about the current package: among mirrors that are
   * not down, those that lacked some of it last (the user's order otherwise).
   */
  private ranked (known?: RootRecord<Mirror>): Mirror[] {
    const order = rankMirrors(this.mirrors.map(m => m.health)).map(h => this.mirrorOf(h))
    if (known === undefined || known.misses.size === 0) return order
    const now = Date.now()
    const rank = (m: Mirror): number => (m.health.isDown(now) ? 2 : 0) + (known.misses.has(m) ? 1 : 0)
    return order.map((m, i) => ({ m, i, r: rank(m) })).sort((a, b) => a.r - b.r || a.i - b.i).map(x => x.m)
  }

  private memoryOf (root: string | undefined): RootRecord<Mirror> | undefined {
    return root === undefined ? undefined : this.memory.get(root)
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
