/**
 * Contributing back (F5): a SwarmNode ties a peer, a block store, Bitswap, the DhtProvider and
 * the Announcer together under a sharing mode.
 *
 * - `consume`: fetch only; never serve a block, never announce.
 * - `share` (default): serve what the store holds; announce pinned roots and every package
 *   fetched (as soon as its root block is held, so downloaders of one package find each other);
 *   withdraw roots that were unpinned or evicted.
 * - `mirror`: as share, and also fetch, pin and serve everything the given roots reach.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { CoreErrorCode, SwarmpackError, isSwarmpackError } from '@swarmpack/core'
import { Bitswap } from './bitswap/index.js'
import { multihashKey } from './bitswap/wire.js'
import { DhtProvider } from './dht-provider.js'
import { Announcer } from './discovery.js'
import { DhtErrorCode } from './errors.js'
import type { BitswapInit } from './bitswap/index.js'
import type { DhtGetOptions, DhtProviderInit, FetchResult } from './dht-provider.js'
import type { AnnouncerOptions } from './discovery.js'
import type { SwarmpackPeer } from './peer.js'
import type { PeerId } from '@libp2p/interface'
import type { Blockstore } from 'interface-blockstore'

const log = logger('swarmpack:sharing')

export type SharingMode = 'consume' | 'share' | 'mirror'
export const SHARING_MODES: readonly SharingMode[] = ['consume', 'share', 'mirror']

/** What SwarmNode uses beyond interface-blockstore when the store offers it (FsBlockstore does). */
export interface SharingBlockstore extends Pick<Blockstore, 'has' | 'get' | 'put'> {
  pins?: () => Array<{ name: string, root: CID }>
  pin?: (name: string, root: CID) => Promise<void>
  addEventListener?: (type: string, listener: (evt: Event) => void) => void
  removeEventListener?: (type: string, listener: (evt: Event) => void) => void
}

export interface SwarmNodeInit {
  peer: SwarmpackPeer
  blockstore: SharingBlockstore
  /** Default `share`. */
  mode?: SharingMode
  /** Mirror mode: roots to fetch, pin and serve. */
  mirrorRoots?: CID[]
  /** Announce pinned roots at start (share and mirror modes). Default true. */
  announcePinned?: boolean
  /** How often pins are re-read to announce new ones and withdraw unpinned ones (ms). Default 60 s. */
  pinSyncInterval?: number
  announcer?: AnnouncerOptions
  /** Extra Bitswap settings (limits, timeouts). */
  bitswap?: Omit<BitswapInit, 'libp2p' | 'blockstore' | 'serve'>
  /** Provider lookup timeout (ms). */
  findTimeout?: number
  /** Bitswap session tuning for fetches (wants in flight, wants per peer, slow-peer timeout, `stallTimeout`). */
  session?: DhtProviderInit['session']
  /**
   * Announce a package being fetched once its root block is held, not only when it is complete
   * (share and mirror modes). Default true.
   */
  announceWhileFetching?: boolean
  /**
   * A package fetched in a swarm whose members know each other (the fetch knew enough peers) is
   * announced once this node's serving is quiet: no block sent for `quietMs` (default 2 s), at
   * most `maxMs` (default 60 s) after it completed. `false`: announce at once.
   */
  announceWhenQuiet?: { quietMs?: number, maxMs?: number } | false
  /** Provider lookups repeated during a fetch (DhtProviderInit.rediscover). */
  rediscover?: DhtProviderInit['rediscover']
}

export interface FetchOptions extends DhtGetOptions {
  /** Also ask these peers from the start. */
  peers?: PeerId[]
  /** Pin the fetched root under this name (if the store supports pins). */
  pin?: string
  /**
   * Fresh provider lookups after the first finds nobody or not everything (default 2, 1 s apart,
   * doubling). Each attempt without progress ends within the stall time (or the lookup timeout, if
   * longer), so a fetch that gets nothing ends within (retries + 1) × that + the backoff.
   */
  retries?: number
}

export class SwarmNode {
  readonly peer: SwarmpackPeer
  readonly mode: SharingMode
  readonly bitswap: Bitswap
  readonly provider: DhtProvider
  readonly announcer: Announcer
  readonly blockstore: SharingBlockstore
  /** Roots announced because they are pinned (withdrawn when unpinned). */
  private readonly pinnedAnnounced = new Set<string>()
  private readonly onRemoved: (evt: Event) => void
  private readonly onAdded: (evt: Event) => void
  private syncTimer?: ReturnType<typeof setInterval>
  private mirroring?: Promise<void>
  private readonly controller = new AbortController()
  private stopped = false
  /** Roots being fetched whose root block has not arrived yet (by multihash), to announce when it does. */
  private readonly rootsAwaited = new Map<string, CID>()
  /** Completed roots waiting for this node's serving to go quiet before they are announced. */
  private readonly quietWaits = new Set<ReturnType<typeof setInterval>>()

  constructor (private readonly init: SwarmNodeInit) {
    const mode = init.mode ?? 'share'
    if (!SHARING_MODES.includes(mode)) throw new SwarmpackError(DhtErrorCode.INVALID_CONFIG, `unknown sharing mode ${String(mode)}`)
    this.peer = init.peer
    this.mode = mode
    this.blockstore = init.blockstore
    this.bitswap = new Bitswap({ ...init.bitswap, libp2p: init.peer.libp2p, blockstore: init.blockstore, serve: mode !== 'consume' })
    this.provider = new DhtProvider({
      dht: init.peer.dht,
      self: init.peer.peerId,
      peerStore: init.peer.libp2p.peerStore,
      bitswap: this.bitswap,
      ...(init.findTimeout !== undefined ? { findTimeout: init.findTimeout } : {}),
      ...(init.session !== undefined ? { session: init.session } : {}),
      ...(init.rediscover !== undefined ? { rediscover: init.rediscover } : {}),
      onFetchStart: (root) => { this.announceWhenHeld(root) }
    })
    this.announcer = new Announcer(init.peer.dht, { ready: () => init.peer.routingTableSize() > 0, ...init.announcer })
    // blocks stored by others (an HTTP mirror download, pack) can answer waiting peers at once
    this.onAdded = (evt) => {
      const cid = (evt as CustomEvent<{ cid: CID }>).detail?.cid
      if (cid === undefined || this.mode === 'consume') return
      this.bitswap.notifyNewBlocks([cid])
      if (this.rootsAwaited.size > 0) {
        const key = multihashKey(cid)
        const root = this.rootsAwaited.get(key)
        if (root !== undefined) {
          this.rootsAwaited.delete(key)
          this.announceEarly(root)
        }
      }
    }
    // an evicted root is no longer served in full: stop announcing it
    this.onRemoved = (evt) => {
      const cid = (evt as CustomEvent<{ cid: CID }>).detail?.cid
      if (cid !== undefined && this.announcer.has(cid)) {
        log('root %c was removed from the store, withdrawing', cid)
        const key = multihashKey(cid)
        const root = this.announcer.roots().find(r => multihashKey(r) === key) ?? cid
        this.pinnedAnnounced.delete(root.toString())
        void this.announcer.withdraw(root)
      }
    }
  }

  async start (): Promise<void> {
    await this.bitswap.start()
    this.blockstore.addEventListener?.('block:added', this.onAdded)
    this.blockstore.addEventListener?.('block:removed', this.onRemoved)
    if (this.mode === 'consume') return
    if (this.init.announcePinned !== false) {
      await this.syncPins()
      this.syncTimer = setInterval(() => { void this.syncPins() }, this.init.pinSyncInterval ?? 60_000)
      this.syncTimer.unref?.()
    }
    if (this.mode === 'mirror' && (this.init.mirrorRoots ?? []).length > 0) {
      this.mirroring = this.mirror(this.init.mirrorRoots ?? [])
    }
  }

  /** Announces pinned roots not yet announced, withdraws those no longer pinned. */
  async syncPins (): Promise<void> {
    if (this.mode === 'consume' || this.stopped || this.blockstore.pins === undefined) return
    const pinned = new Map(this.blockstore.pins().map(p => [p.root.toString(), p.root]))
    for (const key of [...this.pinnedAnnounced]) {
      if (!pinned.has(key)) {
        this.pinnedAnnounced.delete(key)
        await this.announcer.withdraw(CID.parse(key))
      }
    }
    await Promise.all([...pinned].map(async ([key, root]) => {
      if (this.pinnedAnnounced.has(key) || this.announcer.has(root)) return
      if (!await this.blockstore.has(root)) return
      this.pinnedAnnounced.add(key)
      await this.announcer.announce(root).catch(err => { log('announce %c failed: %s', root, err.message) })
    }))
  }

  /**
   * Fetches a package (everything its root reaches) into the store; in share and mirror modes
   * the node then announces it and serves it.
   */
  async fetch (root: CID, options: FetchOptions = {}): Promise<FetchResult> {
    let result: FetchResult | undefined
    const retries = options.retries ?? 2
    for (let attempt = 0; result === undefined; attempt++) {
      try {
        result = await this.provider.fetchDag(root, options)
      } catch (err) {
        await this.provider.closeSession(root)
        if (attempt >= retries || !isSwarmpackError(err, CoreErrorCode.NOT_FOUND) || options.signal?.aborted === true) {
          // its root block, stored later by something else, is not the start of this fetch
          this.rootsAwaited.delete(multihashKey(root))
          throw err
        }
        log('fetch of %c incomplete (%s), looking for providers again', root, (err as Error).message)
        // an abort ends the wait early; the next attempt then rejects with ERR_ABORTED
        await delay(1000 * 2 ** attempt, undefined, { signal: options.signal }).catch(() => {})
      }
    }
    if (options.pin !== undefined && this.blockstore.pin !== undefined) await this.blockstore.pin(options.pin, root)
    const inSwarm = !this.provider.wantsMorePeers(root)
    await this.provider.closeSession(root)
    // announcing takes a DHT query; the caller has its package already, so don't make it wait.
    // Announced while fetching: the record is the same and the announcer keeps it fresh; a second
    // provide would cost every peer of a small swarm a query as the others finish
    if (this.mode !== 'consume' && !this.announcer.has(root)) {
      if (inSwarm && this.init.announceWhenQuiet !== false) this.announceWhenQuiet(root)
      else this.announce(root).catch(err => { log('announcing %c failed: %s', root, (err as Error).message) })
    }
    return result
  }

  /**
   * A package starts being fetched: in share and mirror modes it is announced as soon as its root
   * block is held, before the rest arrives, so other downloaders find this node and trade blocks
   * with it. A want for a block not held yet is answered DontHave, and Have once it arrives.
   */
  private announceWhenHeld (root: CID): void {
    if (this.mode === 'consume' || this.stopped || this.init.announceWhileFetching === false || this.announcer.has(root)) return
    void Promise.resolve(this.blockstore.has(root)).then(held => {
      if (held) this.announceEarly(root)
      else this.rootsAwaited.set(multihashKey(root), root)
    }, () => {})
  }

  private announceEarly (root: CID): void {
    if (this.stopped || this.announcer.has(root)) return
    // A fetch that knows enough peers is in a swarm whose members know each other (a tracker's
    // list): announcing now would cost each of them DHT work for no new peer; it is announced
    // when complete. In a 1+20 swarm told every peer, those twenty announcements at the start
    // took the fetch from 43.5 to 53.4 s.
    if (!this.provider.wantsMorePeers(root)) {
      log('not announcing %c while it is being fetched: its fetch knows enough peers', root)
      return
    }
    log('announcing %c while it is being fetched', root)
    this.announcer.announce(root).catch(err => { log('announcing %c failed: %s', root, (err as Error).message) })
  }

  /**
   * The record is for peers that come later: the swarm this node fetched from knows it already.
   * A provide is a DHT query that every peer of a small swarm answers, so made while the others
   * still fetch it slows them (in a 1 + 20 swarm the completion announcements were up to 40 % of
   * the peers' CPU in the transfer's last seconds); it waits until this node serves no more.
   */
  private announceWhenQuiet (root: CID): void {
    const { quietMs = 2_000, maxMs = 60_000 } = this.init.announceWhenQuiet || {}
    const until = Date.now() + maxMs
    let sent = this.bitswap.stats().blocksSent
    const timer = setInterval(() => {
      const now = this.bitswap.stats().blocksSent
      const quiet = now === sent
      sent = now
      if (!quiet && Date.now() < until) return
      clearInterval(timer)
      this.quietWaits.delete(timer)
      if (this.stopped || this.announcer.has(root)) return
      log('announcing %c: serving %s', root, quiet ? 'is quiet' : 'went on for the longest wait')
      this.announce(root).catch(err => { log('announcing %c failed: %s', root, (err as Error).message) })
    }, quietMs)
    timer.unref?.()
    this.quietWaits.add(timer)
  }

  /**
   * Announces a root this node holds (after `pack`, or a download through another provider).
   * Resolves after the first announcement attempt; returns whether a peer stored it.
   */
  async announce (root: CID): Promise<boolean> {
    if (this.mode === 'consume') return false
    return this.announcer.announce(root)
  }

  /** Stops announcing a root (unpinned, evicted, or no longer wanted). */
  async withdraw (root: CID): Promise<void> {
    this.pinnedAnnounced.delete(root.toString())
    await this.announcer.withdraw(root)
  }

  /** Mirror mode: fetch, pin and announce every root, retrying failures with backoff. */
  private async mirror (roots: CID[]): Promise<void> {
    await Promise.all(roots.map(async root => {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          await this.fetch(root, { signal: this.controller.signal, pin: `mirror:${root.toString()}` })
          log('mirrored %c', root)
          return
        } catch (err) {
          if (this.stopped) return
          const delay = Math.min(2000 * 2 ** attempt, 300_000)
          log('mirroring %c failed (%s), retry in %d ms', root, (err as Error).message, delay)
          await new Promise(resolve => setTimeout(resolve, delay).unref?.())
        }
      }
    }))
  }

  /** Resolves when mirror mode has fetched all its roots. */
  async mirrored (): Promise<void> {
    await this.mirroring
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.rootsAwaited.clear()
    this.controller.abort()
    clearInterval(this.syncTimer)
    for (const timer of this.quietWaits) clearInterval(timer)
    this.quietWaits.clear()
    this.blockstore.removeEventListener?.('block:added', this.onAdded)
    this.blockstore.removeEventListener?.('block:removed', this.onRemoved)
    await this.announcer.stop()
    await this.provider.close()
    await this.bitswap.stop()
  }
}

/** Creates and starts a SwarmNode. */
export async function createSwarmNode (init: SwarmNodeInit): Promise<SwarmNode> {
  const node = new SwarmNode(init)
  await node.start()
  return node
}
