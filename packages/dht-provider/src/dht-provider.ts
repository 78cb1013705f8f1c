/**
 * DhtProvider: the core `Provider` over the swarm. A fetch works per package root: providers of
 * the root are looked up in the DHT once, then a Bitswap session asks those peers for the root's
 * blocks, many at once and spread across them. Blocks arrive verified and stored (Bitswap checks
 * each against its CID before it is stored); progress events name the peer each block came from.
 */
import { logger } from '@libp2p/logger'
import { CoreErrorCode, SwarmpackError, blockLinks, throwIfAborted } from '@swarmpack/core'
import { CustomProgressEvent } from 'progress-events'
import { DhtErrorCode } from './errors.js'
import { Rediscovery, type RediscoveryOptions } from './rediscovery.js'
import type { Bitswap, BitswapSession, FindProviders, SessionOptions } from './bitswap/index.js'
import type { PeerId, AbortOptions } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { CID, ProvidedBlock, Provider, ProviderGetOptions, ProviderProgressEvents } from '@swarmpack/core'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

const log = logger('swarmpack:dht-provider')

export interface ProvidersFoundDetail {
  cid: CID
  /** Peer ids found in this DHT response (new ones only). */
  peers: string[]
}

/** Progress events of the DHT provider: the provider lookup, then the block events of core. */
export type DhtProgressEvents =
  ProviderProgressEvents |
  ProgressEvent<'swarmpack:dht:find-providers', { cid: CID }> |
  ProgressEvent<'swarmpack:dht:providers', ProvidersFoundDetail> |
  ProgressEvent<'swarmpack:dht:fetched', FetchResult>

export interface DhtGetOptions extends ProgressOptions<DhtProgressEvents> {
  signal?: AbortSignal
}

export interface DhtProviderInit {
  /** The DHT used to find providers (`peer.dht`). */
  dht: KadDHT
  /** Our peer id, never treated as a provider. */
  self: PeerId
  /** Adds providers' addresses to the peer store so Bitswap can dial them. */
  peerStore: { merge: (id: PeerId, data: { multiaddrs: any[] }) => Promise<unknown> }
  bitswap: Bitswap
  /** One provider lookup gives up after this many ms (default 20 s). */
  findTimeout?: number
  /** Stop a lookup after this many providers (default 20). */
  maxProviders?: number
  /** Sessions kept open for reuse (least recently used closed first). Default 16. */
  maxSessions?: number
  /**
   * Session tuning: wants in flight, wants per peer, slow-peer timeout (defaults: DEFAULT_SESSION_TUNING),
   * and `stallTimeout`: pending wants that get no verified block this long fail (default 30 s).
   */
  session?: Pick<SessionOptions, 'maxWantsInFlight' | 'maxWantsPerPeer' | 'wantTimeout' | 'stallTimeout' | 'enoughPeers'>
  /**
   * While a root is being fetched its providers are looked up again, 2 s after the start and then
   * twice as long each time up to 30 s (`false`: only when a want finds nobody to ask). Peers
   * fetching the same package announce it early (SwarmNode), so these lookups find them.
   */
  rediscover?: RediscoveryOptions | false
  /** Called when a root starts being fetched (SwarmNode announces it once its root block is held). */
  onFetchStart?: (root: CID) => void
}

/**
 * Package chunks average a few tens of KiB, so a deeper pipeline than Bitswap's generic
 * defaults keeps a single provider's link busy (measured in bench/dht-transfer.bench.ts).
 * Not wider: in a swarm each want in flight is also a want-have waiting in several peers'
 * wantlists (1024 entries each), and a window of 1024 filled them (bench/swarm-distribution).
 * One peer holds at most 64: letting the first provider found hold all 256 made a single-provider
 * fetch ~10 % faster, but a downloader that started with only the seed kept every want there, and
 * peers found later got little (test/swarm-netns.test.ts, DHT discovery: 19 s and the seed sending
 * 2.7x the package, against 12 s and 1.7x with 64). The 256 count wants still asked of peers: a
 * block verified and being written no longer holds one (see BitswapSession.blockVerified), so the
 * peers keep sending while the durable store syncs.
 */
export const DEFAULT_SESSION_TUNING = { maxWantsInFlight: 256, maxWantsPerPeer: 64 }

export interface SourceShare {
  peer: string
  blocks: number
  bytes: number
}

export interface FetchResult {
  root: CID
  blocks: number
  bytes: number
  /** Blocks that were already in the local store. */
  localBlocks: number
  ms: number
  /** Who served what (bytes and blocks per peer). */
  sources: SourceShare[]
}

export class DhtProvider implements Provider {
  readonly name = 'dht'
  private readonly init: DhtProviderInit
  private readonly sessions = new Map<string, BitswapSession>()
  private general?: BitswapSession
  private closed = false
  private readonly rediscovery?: Rediscovery

  constructor (init: DhtProviderInit) {
    this.init = init
    if (init.rediscover !== false) {
      this.rediscovery = new Rediscovery(async (root, signal) => {
        if (!this.wantsMorePeers(root)) return false
        for await (const peer of this.findProvidersFn()(root, { signal })) {
          this.sessions.get(root.toString())?.addPeer(peer)
        }
        return true
      }, init.rediscover, init.onFetchStart)
    }
  }

  /** Runs `fn` as a fetch from `root`: its providers are looked up again while it runs. */
  private async fetching<T> (root: CID | undefined, fn: () => Promise<T>): Promise<T> {
    const end = root !== undefined ? this.rediscovery?.begin(root) : undefined
    try {
      return await fn()
    } finally {
      end?.()
    }
  }

  get bitswap (): Bitswap {
    return this.init.bitswap
  }

  /**
   * A DHT lookup as the Bitswap session wants it: provider peer ids as they are found, their
   * addresses merged into the peer store first, ourselves and banned peers left out.
   */
  findProvidersFn (onProgress?: (evt: DhtProgressEvents) => void): FindProviders {
    const { dht, self, peerStore, bitswap } = this.init
    const timeout = this.init.findTimeout ?? 20_000
    const limit = this.init.maxProviders ?? 20
    return async function * (cid: CID, options: { signal: AbortSignal }) {
      onProgress?.(new CustomProgressEvent('swarmpack:dht:find-providers', { cid }))
      const signal = AbortSignal.any([options.signal, AbortSignal.timeout(timeout)])
      const seen = new Set<string>()
      try {
        for await (const event of dht.findProviders(cid, { signal })) {
          if (event.name !== 'PROVIDER') continue
          const fresh: PeerId[] = []
          for (const p of event.providers) {
            const key = p.id.toString()
            if (p.id.equals(self) || seen.has(key) || bitswap.isBanned(key)) continue
            seen.add(key)
            if (p.multiaddrs.length > 0) await peerStore.merge(p.id, { multiaddrs: p.multiaddrs }).catch(() => {})
            fresh.push(p.id)
          }
          if (fresh.length > 0) {
            log('providers of %c: %s', cid, fresh.map(String).join(', '))
            onProgress?.(new CustomProgressEvent('swarmpack:dht:providers', { cid, peers: fresh.map(String) }))
          }
          yield * fresh
          if (seen.size >= limit) return
        }
      } catch (err) {
        if (options.signal.aborted) return
        log('provider lookup for %c ended: %s', cid, (err as Error).message)
      }
    }
  }

  private assertOpen (): void {
    if (this.closed) throw new SwarmpackError(DhtErrorCode.CLOSED, 'DHT provider is closed')
  }

  /**
   * The Bitswap session for a package root: created on first use (its providers are looked up
   * once), reused after. Pass `peers` to ask known peers as well.
   */
  session (root: CID, options: { peers?: PeerId[], onProgress?: (evt: DhtProgressEvents) => void } = {}): BitswapSession {
    this.assertOpen()
    const key = root.toString()
    let session = this.sessions.get(key)
    if (session !== undefined) {
      this.sessions.delete(key)
      this.sessions.set(key, session) // most recently used last
      for (const p of options.peers ?? []) session.addPeer(p)
      return session
    }
    // the session outlives one call, so its lookup progress goes to whoever created it
    session = this.init.bitswap.createSession({ ...DEFAULT_SESSION_TUNING, ...this.init.session, root, peers: options.peers, findProviders: this.findProvidersFn(options.onProgress) })
    this.sessions.set(key, session)
    const max = this.init.maxSessions ?? 16
    while (this.sessions.size > max) {
      const [oldestKey, oldest] = this.sessions.entries().next().value as [string, BitswapSession]
      this.sessions.delete(oldestKey)
      void oldest.close()
    }
    return session
  }

  /** Whether the fetch of `root` would gain from more peers (true when no fetch of it runs). */
  wantsMorePeers (root: CID): boolean {
    return this.sessions.get(root.toString())?.wantsMorePeers() ?? true
  }

  /** Closes and forgets a root's session (after its package is complete). */
  async closeSession (root: CID): Promise<void> {
    const session = this.sessions.get(root.toString())
    this.sessions.delete(root.toString())
    await session?.close()
  }

  /** A session for blocks asked without a root: providers are looked up per block. */
  private generalSession (): BitswapSession {
    this.assertOpen()
    this.general ??= this.init.bitswap.createSession({ ...DEFAULT_SESSION_TUNING, ...this.init.session, findProviders: this.findProvidersFn() })
    return this.general
  }

  /** The root's session when the caller names the root (`options.root`), else the general one. */
  private sessionFor (options: ProviderGetOptions): BitswapSession {
    return options.root !== undefined ? this.session(options.root) : this.generalSession()
  }

  async get (cid: CID, options: ProviderGetOptions = {}): Promise<Uint8Array> {
    return this.fetching(options.root, async () => this.sessionFor(options).get(cid, options))
  }

  async has (cid: CID, options: ProviderGetOptions = {}): Promise<boolean> {
    return this.sessionFor(options).has(cid, options)
  }

  async * getMany (cids: Iterable<CID> | AsyncIterable<CID>, options: ProviderGetOptions = {}): AsyncIterable<ProvidedBlock> {
    const end = options.root !== undefined ? this.rediscovery?.begin(options.root) : undefined
    try {
      yield * this.sessionFor(options).getMany(cids, options)
    } finally {
      end?.()
    }
  }

  /** A Provider scoped to one package root (what a resolver uses per package). */
  forRoot (root: CID): Provider {
    return {
      name: `dht:${root.toString()}`,
      get: async (cid, options) => this.get(cid, { ...options, root }),
      has: async (cid, options) => this.has(cid, { ...options, root }),
      getMany: (cids, options) => this.getMany(cids, { ...options, root })
    }
  }

  /**
   * Fetches every block the root reaches (walking dag-cbor links level by level) into the local
   * store through the root's session. Rejects with ERR_NOT_FOUND naming the missing blocks when
   * no peer delivered them.
   */
  async fetchDag (root: CID, options: DhtGetOptions & { peers?: PeerId[] } = {}): Promise<FetchResult> {
    throwIfAborted(options.signal)
    return this.fetching(root, async () => this.fetchDagNow(root, options))
  }

  private async fetchDagNow (root: CID, options: DhtGetOptions & { peers?: PeerId[] }): Promise<FetchResult> {
    const started = Date.now()
    const onProgress = options.onProgress
    const session = this.session(root, { peers: options.peers, onProgress })
    const seen = new Set<string>([root.toString()])
    let blocks = 0
    let bytes = 0
    let localBlocks = 0
    const sources = new Map<string, SourceShare>()
    const account = (b: ProvidedBlock): CID[] => {
      blocks++
      bytes += b.bytes.byteLength
      if (b.source === 'local') {
        localBlocks++
      } else {
        const s = sources.get(b.source) ?? { peer: b.source, blocks: 0, bytes: 0 }
        s.blocks++
        s.bytes += b.bytes.byteLength
        sources.set(b.source, s)
      }
      const next: CID[] = []
      for (const link of blockLinks(b.cid, b.bytes)) {
        if (seen.has(link.toString())) continue
        seen.add(link.toString())
        next.push(link)
      }
      return next
    }
    let source = 'local'
    const rootBytes = await session.get(root, {
      signal: options.signal,
      onProgress: (evt: ProviderProgressEvents) => {
        if (evt.type === 'swarmpack:provider:block') source = evt.detail.source
        onProgress?.(evt)
      }
    })
    let level = account({ cid: root, bytes: rootBytes, source })
    log('fetch %c: root after %d ms from %s', root, Date.now() - started, source)
    while (level.length > 0) {
      const wanted = new Set(level.map(String))
      const next: CID[] = []
      // in a random order: peers fetching the same package at once then hold different blocks
      // early and have something to trade, instead of all asking the seed for the same ones
      for await (const b of session.getMany(shuffled(level), { signal: options.signal, onProgress })) {
        wanted.delete(b.cid.toString())
        next.push(...account(b))
      }
      log('fetch %c: a level of %d blocks done after %d ms', root, level.length, Date.now() - started)
      throwIfAborted(options.signal)
      if (wanted.size > 0) {
        const d = session.diagnostics()
        throw new SwarmpackError(CoreErrorCode.NOT_FOUND, `${wanted.size} blocks of ${root.toString()} were not found in the swarm (asked ${d.peersAsked.length > 0 ? d.peersAsked.join(', ') : 'no peer: none found'}; provider lookup ${d.lookupFinished ? 'finished' : 'still running'})`, {
          details: { root: root.toString(), missing: [...wanted].slice(0, 20), missingCount: wanted.size, ...d }
        })
      }
      level = next
    }
    const result: FetchResult = { root, blocks, bytes, localBlocks, ms: Date.now() - started, sources: [...sources.values()].sort((a, b) => b.bytes - a.bytes) }
    onProgress?.(new CustomProgressEvent('swarmpack:dht:fetched', result))
    return result
  }

  async close (options: AbortOptions = {}): Promise<void> {
    void options
    if (this.closed) return
    this.closed = true
    this.rediscovery?.stop()
    const all = [...this.sessions.values()]
    if (this.general !== undefined) all.push(this.general)
    this.sessions.clear()
    await Promise.all(all.map(async s => s.close()))
  }
}

/** A copy of `items` in random order (Fisher-Yates). */
function shuffled<T> (items: T[]): T[] {
  const out = items.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const t = out[i]
    out[i] = out[j]
    out[j] = t
  }
  return out
}
