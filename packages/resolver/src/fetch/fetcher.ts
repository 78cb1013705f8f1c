/**
 * createFetcher: one verified fetch over any number of core Providers (the swarm, HTTP mirrors,
 * directories). A package root is fetched in two passes: first its structure (manifest root,
 * pages, chunk lists, level by level) which gives exact totals, then its chunks, streamed from a
 * depth-first walk so memory does not grow with the package. Blocks are stored as they arrive, and
 * blocks already in the store are never asked for, so a restarted fetch fetches only what is missing.
 */
import { logger } from '@libp2p/logger'
import { CoreErrorCode, FsBlockstore, SwarmpackError, readBlock, throwIfAborted } from '@swarmpack/core'
import { ResolverErrorCode } from '../errors.js'
import { blockItems, dagLeaves, isStructure, multihashKey } from './dag-walker.js'
import { abortedError } from './errors.js'
import { LatencyTracker } from './latency.js'
import { checkPolicy } from './policy.js'
import { FetchAccount } from './progress.js'
import { BlockScheduler } from './scheduler.js'
import type { BlockItem, RunSource } from './scheduler.js'
import type { Fetcher, FetcherInit, FetchOptions, FetchResult, FetchSource } from './types.js'
import type { BlockSource } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'

const log = logger('swarmpack:fetch')

export const FETCH_DEFAULTS = Object.freeze({
  hedgeAfterMs: 1000,
  blockTimeoutMs: 15_000,
  lookupTimeoutMs: 15_000,
  stallTimeoutMs: 30_000,
  maxInFlight: 256,
  peerConcurrency: 128,
  mirrorConcurrency: 16
})

interface SourceEntry {
  source: FetchSource
  name: string
  latency: LatencyTracker
}

function checkTimeout (name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isFinite(value) || value < 0)) {
    throw new SwarmpackError(ResolverErrorCode.FETCH_CONFIG, `${name} must be a non-negative number of ms, got ${String(value)}`, { details: { [name]: value } })
  }
}

class MultiSourceFetcher implements Fetcher {
  private readonly init: FetcherInit
  private readonly entries: SourceEntry[] = []
  private readonly storeVerifies: boolean

  constructor (init: FetcherInit) {
    if (init?.blockstore === undefined || typeof init.blockstore.has !== 'function' || typeof init.blockstore.put !== 'function') {
      throw new SwarmpackError(ResolverErrorCode.FETCH_CONFIG, 'createFetcher needs a blockstore with has, get and put')
    }
    if (!Array.isArray(init.sources)) throw new SwarmpackError(ResolverErrorCode.FETCH_CONFIG, 'createFetcher needs a sources array (it may be empty)')
    checkPolicy(init.policy ?? 'peers-first')
    for (const k of ['hedgeAfterMs', 'blockTimeoutMs', 'stallTimeoutMs', 'lookupTimeoutMs'] as const) checkTimeout(k, init[k])
    this.init = init
    this.storeVerifies = init.storeVerifies ?? init.blockstore instanceof FsBlockstore
    for (const s of init.sources) this.addSource(s)
  }

  get sources (): readonly FetchSource[] {
    return this.entries.map(e => e.source)
  }

  addSource (source: FetchSource): void {
    if (source?.provider === undefined || typeof source.provider.get !== 'function') {
      throw new SwarmpackError(ResolverErrorCode.FETCH_CONFIG, 'a fetch source needs a provider with get()')
    }
    if (source.kind !== 'peer' && source.kind !== 'mirror') {
      throw new SwarmpackError(ResolverErrorCode.FETCH_CONFIG, `source kind must be 'peer' or 'mirror', got ${JSON.stringify(source.kind)}`)
    }
    const name = source.provider.name
    if (this.entries.some(e => e.name === name)) {
      throw new SwarmpackError(ResolverErrorCode.FETCH_CONFIG, `a source named ${name} is already configured`, { details: { name } })
    }
    const hedgeAfterMs = this.init.hedgeAfterMs ?? FETCH_DEFAULTS.hedgeAfterMs
    this.entries.push({ source, name, latency: new LatencyTracker({ initialMs: hedgeAfterMs, maxMs: this.init.blockTimeoutMs ?? FETCH_DEFAULTS.blockTimeoutMs }) })
  }

  removeSource (name: string): void {
    const i = this.entries.findIndex(e => e.name === name)
    if (i >= 0) this.entries.splice(i, 1)
  }

  private scheduler (options: FetchOptions, account: FetchAccount, root?: CID): BlockScheduler {
    const policy = checkPolicy(options.policy ?? this.init.policy ?? 'peers-first')
    for (const k of ['hedgeAfterMs', 'blockTimeoutMs', 'stallTimeoutMs', 'lookupTimeoutMs'] as const) checkTimeout(k, options[k])
    const sources: RunSource[] = this.entries.map(e => ({
      name: e.name,
      kind: e.source.kind,
      priority: e.source.priority ?? 0,
      provider: e.source.provider,
      limit: Math.max(1, e.source.concurrency ?? (e.source.kind === 'peer' ? FETCH_DEFAULTS.peerConcurrency : FETCH_DEFAULTS.mirrorConcurrency)),
      latency: e.latency,
      active: 0,
      successes: 0,
      failures: 0,
      demotedUntil: 0,
      lastDelivery: 0
    }))
    const pick = <K extends 'hedgeAfterMs' | 'blockTimeoutMs' | 'stallTimeoutMs' | 'lookupTimeoutMs'>(k: K): number => options[k] ?? this.init[k] ?? FETCH_DEFAULTS[k]
    return new BlockScheduler({
      sources,
      blockstore: this.init.blockstore,
      storeVerifies: this.storeVerifies,
      policy,
      hedgeAfterMs: pick('hedgeAfterMs'),
      blockTimeoutMs: pick('blockTimeoutMs'),
      lookupTimeoutMs: pick('lookupTimeoutMs'),
      stallTimeoutMs: pick('stallTimeoutMs'),
      maxInFlight: this.init.maxInFlight ?? FETCH_DEFAULTS.maxInFlight,
      account,
      ...(root !== undefined ? { root } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {})
    })
  }

  private read (cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
    return readBlock(this.init.blockstore as BlockSource, cid, { signal })
  }

  /** One fetch: its accounting and scheduler, `body` to feed it, the same ending for every kind. */
  private async withRun (options: FetchOptions, root: CID | undefined, body: (scheduler: BlockScheduler, account: FetchAccount) => Promise<void>): Promise<FetchResult> {
    throwIfAborted(options.signal)
    const account = new FetchAccount(options.onProgress, root)
    const scheduler = this.scheduler(options, account, root)
    try {
      await body(scheduler, account)
      scheduler.assertComplete()
      return account.done()
    } catch (err) {
      throw this.failed(err, options)
    } finally {
      scheduler.close()
    }
  }

  async fetchDag (root: CID, options: FetchOptions = {}): Promise<FetchResult> {
    if (!isStructure(root)) return this.fetchBlocks([root], { ...options, root })
    return this.withRun(options, root, async (scheduler, account) => {
      // pass 1: the structure, level by level; counts every chunk reference and its size
      account.hold()
      const seen = new Set<string>([multihashKey(root)])
      let structureBlocks = 0
      let structureBytes = 0
      let leafRefs = 0
      let leafBytes = 0
      let unsized = false
      let level: BlockItem[] = [{ cid: root }]
      while (level.length > 0) {
        const next: BlockItem[] = []
        await scheduler.run(level, (cid, bytes) => {
          structureBlocks++
          structureBytes += bytes.byteLength
          for (const item of blockItems(cid, bytes)) {
            if (isStructure(item.cid)) {
              const key = multihashKey(item.cid)
              if (!seen.has(key)) { seen.add(key); next.push(item) }
            } else {
              leafRefs++
              if (item.size === undefined) unsized = true
              else leafBytes += item.size
            }
          }
        })
        scheduler.assertComplete()
        level = next
      }
      account.start({ root, totalBlocks: structureBlocks + leafRefs, ...(unsized ? {} : { totalBytes: structureBytes + leafBytes }), structureBlocks })
      // pass 2: the leaves, streamed from a walk over the (now local) structure
      await scheduler.run(dagLeaves(root, async cid => this.read(cid, options.signal)))
    })
  }

  async fetchBlocks (cids: Iterable<CID> | AsyncIterable<CID>, options: FetchOptions = {}): Promise<FetchResult> {
    return this.withRun(options, options.root, async (scheduler, account) => {
      const total = Array.isArray(cids) ? cids.length : undefined
      account.start({ ...(options.root !== undefined ? { root: options.root } : {}), ...(total !== undefined ? { totalBlocks: total } : {}) })
      await scheduler.run(toItems(cids))
    })
  }

  async getBlock (cid: CID, options: FetchOptions = {}): Promise<Uint8Array> {
    throwIfAborted(options.signal)
    if (await this.init.blockstore.has(cid)) return this.read(cid, options.signal)
    let got: Uint8Array | undefined
    await this.withRun(options, options.root, async (scheduler) => {
      await scheduler.run([{ cid }], (_, bytes) => { got = bytes }, true)
    })
    return got ?? this.read(cid, options.signal)
  }

  /** Maps failures to what the contract promises: ERR_ABORTED on abort, typed errors otherwise. */
  private failed (err: unknown, options: FetchOptions): unknown {
    if (options.signal?.aborted === true && !(err instanceof SwarmpackError && err.code === CoreErrorCode.ABORTED)) return abortedError(options.signal.reason)
    log('fetch failed: %s', (err as Error)?.message)
    return err
  }
}

async function * toItems (cids: Iterable<CID> | AsyncIterable<CID>): AsyncGenerator<BlockItem> {
  for await (const cid of cids) yield { cid }
}

export function createFetcher (init: FetcherInit): Fetcher {
  return new MultiSourceFetcher(init)
}
