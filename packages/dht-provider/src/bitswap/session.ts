/**
 * A fetch session: a set of peers believed to hold one package (given, added, or found through
 * the DHT for its root), asked for many blocks at once. With one peer, each want goes to it as a
 * want-block. With several, while none has said DontHave, each want goes at once as a want-block
 * to the peer with most room (see `trusting`). After that, as in boxo's sessions: a want-have
 * (send-dont-have) goes to every peer, and the want-block only to a peer that said Have, the one with most room in its window
 * (see peer-window.ts); a peer that said DontHave is not asked again until it says Have (it keeps
 * our want-have and announces the block when it gets it). A DontHave, a disconnect or a silent
 * peer (nothing delivered for `wantTimeout`) moves the want-block to another holder; a want no
 * peer has confirmed for `wantTimeout` is asked as a want-block of a peer that has not refused it.
 * When the block arrives, every other peer asked gets a cancel. Blocks arrive through the Bitswap
 * node in two steps: verified (the want leaves the peer's window, so the peer is asked for more
 * while the block is written), then durably stored (only then is it handed to the waiters, R1).
 */
import { logger } from '@libp2p/logger'
import { CoreErrorCode, SwarmpackError, assertSupportedCid, throwIfAborted } from '@swarmpack/core'
import { CustomProgressEvent } from 'progress-events'
import { SESSION_ENOUGH_PEERS, SESSION_WANT_HAVE_FANOUT, DEFAULT_SESSION_BYTES_IN_FLIGHT_PER_PEER, DEFAULT_SESSION_MAX_WANTS_IN_FLIGHT, DEFAULT_SESSION_STALL_TIMEOUT_MS, DEFAULT_WANT_TIMEOUT_MS, MAX_ADAPTIVE_WANTS_PER_PEER, MIN_ADAPTIVE_WANTS_PER_PEER } from './constants.js'
import { multihashKey, readBlock as readAll } from './engine.js'
import { BitswapErrorCode } from './errors.js'
import { PeerHistory } from './peer-history.js'
import { PeerWindow } from './peer-window.js'
import { WantType } from './wire.js'
import type { ProvidedBlock, Provider, ProviderGetOptions, ProviderProgressEvents } from '@swarmpack/core'
import type { PeerId } from '@libp2p/interface'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

const log = logger('swarmpack:bitswap:session')

/** Finds peers that provide a CID (the DHT layer supplies it). */
export type FindProviders = (cid: CID, options: { signal: AbortSignal }) => AsyncIterable<PeerId>

export interface SessionOptions {
  /** The package root: providers are looked up for it once, before anything else. */
  root?: CID
  /** Peers to ask from the start. */
  peers?: PeerId[]
  findProviders?: FindProviders
  /** A peer holding our wants that delivers nothing for this long is passed over. */
  wantTimeout?: number
  /**
   * While wants are pending and no verified block arrives for this long, every pending want fails
   * with ERR_NOT_FOUND (default 30 s). Each block re-arms it, so a slow peer that keeps delivering
   * is never failed.
   */
  stallTimeout?: number
  /** Wants getMany keeps asked of peers at once (blocks verified and being written do not count; at most 4x as many in all). */
  maxWantsInFlight?: number
  /**
   * Want-blocks one peer holds from this session at once. Default: adaptive, about
   * `bytesInFlightPerPeer` worth of blocks of the average size seen so far (8 to 512 wants).
   */
  maxWantsPerPeer?: number
  /** Target bytes requested from one peer at once when maxWantsPerPeer is adaptive (default 8 MiB). */
  bytesInFlightPerPeer?: number
  /**
   * A CID's providers are looked up again when a want finds nobody to ask and the last lookup is
   * older than this (ms; default 5 s). A content root seen before its providers announced it (an
   * index head read before the index's announcement arrived) is found on a later try, instead of
   * failing for as long as the session lives.
   */
  rediscoverAfter?: number
  /**
   * With this many peers given, the root's providers are not looked up at the start (only when
   * the given peers cannot deliver), and `wantsMorePeers()` says no (default SESSION_ENOUGH_PEERS).
   */
  enoughPeers?: number
}

/** What a session tried, for errors that say why blocks are missing. */
export interface SessionDiagnostics {
  /** Peers asked (still in the session or gone), at most 20. */
  peersAsked: string[]
  /** Whether the provider lookups are done (true when the session has no lookup). */
  lookupFinished: boolean
}

/** Details of the ERR_NOT_FOUND a session fails wants with. */
export interface SessionNotFoundDetails extends SessionDiagnostics {
  reason: 'no-peers' | 'stalled'
  /** Missing CIDs, at most 20. */
  missing: string[]
  missingCount: number
  /** For `stalled`: ms since the last verified block (or since the wants were made). */
  stalledMs?: number
}

const MAX_LISTED = 20

/** A holder that delivered nothing for this many `wantTimeout`s while holding our wants is stuck. */
const STUCK_AFTER_WANT_TIMEOUTS = 3

export interface SessionPeerStats {
  peer: string
  blocks: number
  bytes: number
}

/** What the session needs from the Bitswap node. */
export interface SessionHost {
  readonly blockstore: Pick<Blockstore, 'has' | 'get'>
  readonly selfId: string
  isBanned(peer: PeerId | string): boolean
  register(session: BitswapSession, key: string): void
  unregister(session: BitswapSession, key: string): void
  /** `urgent`: someone waits for the answer (want-blocks, want-haves nobody has answered yet); else it may be batched. */
  sendWant(peer: PeerId, cid: CID, type: WantType, urgent: boolean): void
  sendCancel(peer: PeerId, cid: CID, session: BitswapSession): void
  sessionClosed(session: BitswapSession): void
}

interface SessionPeer {
  id: PeerId
  /** Keys of our want-blocks this peer holds. */
  inflight: Set<string>
  /** How many it may hold while the session has other peers to ask. */
  window: PeerWindow
  /** What it answered so far: whether it can be asked for blocks without a want-have first. */
  history: PeerHistory
  /** Haves and blocks it sent us: who is asked first whether it holds a block. */
  useful: number
  blocks: number
  bytes: number
  /** Last time it delivered anything (or was first asked). */
  lastActivity: number
}

interface Waiter {
  resolve(bytes: Uint8Array): void
  reject(err: Error): void
  onProgress?: ProviderGetOptions['onProgress']
  onVerified?: SessionGetOptions['onVerified']
}

export interface SessionGetOptions extends ProviderGetOptions {
  /**
   * Called with true when the block is verified and its durable write begins (no peer is asked
   * for it any more; the promise still waits for the write), with false if that write failed
   * and the block is asked for again. getMany bounds the wants still asked of peers with it.
   */
  onVerified?: (verified: boolean) => void
}

/** Gets that end together (getMany's): `aborts` rejects one with ERR_ABORTED; `ended`: new ones fail at once. */
interface WaiterGroup {
  aborts: Set<(reason?: unknown) => void>
  ended: boolean
}

interface SessionWant {
  cid: CID
  key: string
  waiters: Set<Waiter>
  /** Peers holding a want-block for it, with when they were asked. */
  assigned: Map<string, number>
  dontHave: Set<string>
  /** Peers that said Have (and did not say DontHave since). */
  haves: Set<string>
  /** Peers sent a want-have for it (they answer Have or DontHave, and Have later if they get it). */
  haveAsked: Set<string>
  /** No peer confirmed it for `wantTimeout`: any peer that has not refused it may get the want-block. */
  direct: boolean
  lastAssign: number
}

interface HaveProbe {
  cid: CID
  key: string
  resolve(has: boolean): void
  asked: Set<string>
  answered: Set<string>
}

export class BitswapSession implements Provider {
  readonly name: string
  private readonly host: SessionHost
  private readonly opts: Required<Omit<SessionOptions, 'root' | 'peers' | 'findProviders' | 'maxWantsPerPeer' | 'enoughPeers'>>
  private readonly fixedWantsPerPeer?: number
  private readonly enoughPeers: number
  /** Running average size of the blocks received, to size the per-peer window. */
  private averageBlockSize = 128 * 1024
  private readonly root?: CID
  private readonly findProvidersFn?: FindProviders
  private readonly peers = new Map<string, SessionPeer>()
  /** Peers that left or were banned; kept for stats. */
  private readonly formerPeers = new Map<string, SessionPeer>()
  /** Peers in the session that have said DontHave (see `trusting`). */
  private refusingPeers = 0
  private readonly wants = new Map<string, SessionWant>()
  /**
   * Wants whose block is verified and being written to the store: out of every peer's window
   * (asked of nobody), their waiters get the block once the write is durable (see blockVerified).
   */
  private readonly storingWants = new Map<string, SessionWant>()
  /** Wants waiting for a peer with room. */
  private readonly unassigned = new Set<string>()
  /** Of those, the ones each peer said Have for (stale keys are dropped when met), so a peer with room finds its wants at once. */
  private readonly waitingAt = new Map<string, Set<string>>()
  /** Of those, the ones any peer may take (a lone peer's, `direct` ones, those that waited for a lookup). */
  private readonly waitingAny = new Set<string>()
  private readonly probes = new Map<string, HaveProbe>()
  /** When each CID's providers were last looked up (see `rediscoverAfter`). */
  private readonly discovered = new Map<string, number>()
  private discovering?: Promise<void>
  private readonly controller = new AbortController()
  private readonly timer: ReturnType<typeof setInterval>
  /** Last verified block, or when wants were made after none were pending: the stall clock. */
  private lastProgress = Date.now()
  private closed = false

  constructor (host: SessionHost, options: SessionOptions = {}) {
    this.host = host
    this.root = options.root
    this.findProvidersFn = options.findProviders
    this.name = `bitswap${options.root !== undefined ? `:${options.root.toString()}` : ''}`
    this.opts = {
      wantTimeout: options.wantTimeout ?? DEFAULT_WANT_TIMEOUT_MS,
      stallTimeout: options.stallTimeout ?? DEFAULT_SESSION_STALL_TIMEOUT_MS,
      maxWantsInFlight: options.maxWantsInFlight ?? DEFAULT_SESSION_MAX_WANTS_IN_FLIGHT,
      bytesInFlightPerPeer: options.bytesInFlightPerPeer ?? DEFAULT_SESSION_BYTES_IN_FLIGHT_PER_PEER,
      rediscoverAfter: options.rediscoverAfter ?? 5000
    }
    this.fixedWantsPerPeer = options.maxWantsPerPeer
    this.enoughPeers = options.enoughPeers ?? SESSION_ENOUGH_PEERS
    for (const peer of options.peers ?? []) this.addPeer(peer)
    // one timer per session: slow peers and the stall deadline (no per-block timers)
    this.timer = setInterval(() => { this.checkSlowPeers() }, Math.max(50, Math.floor(Math.min(this.opts.wantTimeout, this.opts.stallTimeout) / 4)))
    this.timer.unref?.()
    // enough peers given (a tracker's list, a swarm's members): look providers up only if they fail
    if (this.root !== undefined && this.findProvidersFn !== undefined && this.wantsMorePeers()) this.discover(this.root)
  }

  /** Whether another provider lookup could help: the session knows fewer than `enoughPeers` peers. */
  wantsMorePeers (): boolean {
    return this.peers.size < this.enoughPeers
  }

  /** Adds a peer to ask; pending wants that found no peer are sent to it. */
  addPeer (peer: PeerId): void {
    this.join(peer, false)
  }

  /** `announced`: found through a provider record of the root, so taken to hold the whole package (until its first DontHave). */
  private join (peer: PeerId, announced: boolean): void {
    const key = peer.toString()
    if (announced) (this.peers.get(key) ?? this.formerPeers.get(key))?.history.announced()
    if (this.closed || key === this.host.selfId || this.host.isBanned(key)) return
    if (this.peers.has(key)) {
      if (announced) this.raceLone(key)
      return
    }
    const former = this.formerPeers.get(key)
    this.formerPeers.delete(key)
    const p = former ?? { id: peer, inflight: new Set(), window: new PeerWindow(), history: new PeerHistory(), useful: 0, blocks: 0, bytes: 0, lastActivity: Date.now() }
    if (announced) p.history.announced()
    this.peers.set(key, p)
    p.lastActivity = Date.now()
    if (p.history.refused) this.refusingPeers++
    for (const probe of this.probes.values()) this.askHave(probe, key)
    for (const want of this.wants.values()) {
      // a new peer (or one back after a disconnect, which dropped our wantlist) is a fresh chance
      want.dontHave.delete(key)
      want.haveAsked.delete(key)
      this.askHaves(want, this.trusting())
    }
    this.pumpUnassigned()
    if (announced) this.raceLone(key)
  }

  peerIds (): string[] {
    return [...this.peers.keys()]
  }

  /** Bytes and blocks received from each peer, for "share served by each peer". */
  stats (): SessionPeerStats[] {
    return [...this.peers.values(), ...this.formerPeers.values()]
      .map(p => ({ peer: p.id.toString(), blocks: p.blocks, bytes: p.bytes }))
  }

  async get (cid: CID, options: SessionGetOptions = {}): Promise<Uint8Array> {
    return this.fetchBlock(cid, options)
  }

  /**
   * get, aborted through `group` instead of `options.signal` when given: getMany's gets share one
   * (an AbortSignal with hundreds of listeners costs a scan of them on every add).
   */
  private async fetchBlock (cid: CID, options: SessionGetOptions, group?: WaiterGroup): Promise<Uint8Array> {
    throwIfAborted(options.signal)
    this.assertOpen()
    // only what verifyBlock can check is ever asked for (ERR_UNSUPPORTED_CID otherwise)
    assertSupportedCid(cid)
    if (await this.host.blockstore.has(cid)) {
      const bytes = await readAll(this.host.blockstore, cid)
      options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid, size: bytes.byteLength, source: 'local' }))
      return bytes
    }
    this.assertOpen()
    if (group?.ended === true) throw new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted')
    const key = multihashKey(cid)
    return new Promise<Uint8Array>((resolve, reject) => {
      const waiter: Waiter = {
        onProgress: options.onProgress,
        onVerified: options.onVerified,
        resolve: (bytes) => { cleanup(); resolve(bytes) },
        reject: (err) => { cleanup(); reject(err) }
      }
      const onAbort = (reason: unknown = options.signal?.reason): void => {
        this.storingWants.get(key)?.waiters.delete(waiter)
        const want = this.wants.get(key)
        if (want !== undefined) {
          want.waiters.delete(waiter)
          if (want.waiters.size === 0) this.dropWant(want)
        }
        waiter.reject(new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted', { cause: reason }))
      }
      const onSignal = (): void => { onAbort() }
      const cleanup = (): void => {
        if (group !== undefined) group.aborts.delete(onAbort)
        else options.signal?.removeEventListener('abort', onSignal)
      }
      if (group !== undefined) group.aborts.add(onAbort)
      else options.signal?.addEventListener('abort', onSignal, { once: true })
      // its block is being written: it is handed over with the others once durable
      let want = this.wants.get(key) ?? this.storingWants.get(key)
      if (want === undefined) {
        want = { cid, key, waiters: new Set(), assigned: new Map(), dontHave: new Set(), haves: new Set(), haveAsked: new Set(), direct: false, lastAssign: Date.now() }
        // the stall clock starts when the session has something to wait for
        if (this.wants.size === 0) this.lastProgress = Date.now()
        this.wants.set(key, want)
        this.host.register(this, key)
        want.waiters.add(waiter)
        this.assign(want)
      } else {
        want.waiters.add(waiter)
      }
    })
  }

  /** Fetches many blocks, a bounded number in flight, yielding them as they arrive. Missing blocks are skipped. */
  async * getMany (cids: Iterable<CID> | AsyncIterable<CID>, options: ProviderGetOptions = {}): AsyncIterable<ProvidedBlock> {
    this.assertOpen()
    // the gets in flight: aborted together when the caller aborts or stops iterating
    const group: WaiterGroup = { aborts: new Set(), ended: false }
    const abortAll = (reason?: unknown): void => { for (const abort of [...group.aborts]) abort(reason) }
    const onAbort = (): void => { group.ended = true; abortAll(options.signal?.reason) }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const done: Array<ProvidedBlock | Error> = []
    let wake: (() => void) | undefined
    let inflight = 0
    // maxWantsInFlight bounds the wants still asked of peers; blocks verified and being written
    // do not count (the node bounds their bytes), so the peers are kept busy during a store's sync
    let asked = 0
    const maxInflight = 4 * this.opts.maxWantsInFlight
    const full = (): boolean => asked >= this.opts.maxWantsInFlight || inflight >= maxInflight
    const iterator = (Symbol.asyncIterator in cids ? cids[Symbol.asyncIterator]() : (cids as Iterable<CID>)[Symbol.iterator]()) as AsyncIterator<CID> | Iterator<CID>
    let exhausted = false
    let stalled = false
    const start = (cid: CID): void => {
      inflight++
      asked++
      let asking = true
      let source = 'local'
      this.fetchBlock(cid, {
        onProgress: (evt: ProviderProgressEvents) => {
          if (evt.type === 'swarmpack:provider:block') source = evt.detail.source
          options.onProgress?.(evt)
        },
        onVerified: (verified) => {
          if (verified !== asking) return
          asking = !verified
          asked += verified ? -1 : 1
          if (verified) wake?.()
        }
      }, group).then(bytes => { done.push({ cid, bytes, source }) }, (err: Error) => { done.push(err) })
        .finally(() => {
          inflight--
          if (asking) asked--
          wake?.()
        })
    }
    try {
      while (true) {
        // after a stall, asking for more would only wait another stall time: what is left is missing
        while (!exhausted && !stalled && !full()) {
          const next = await iterator.next()
          if (next.done === true) { exhausted = true; break }
          start(next.value)
        }
        while (done.length > 0) {
          const item = done.shift() as ProvidedBlock | Error
          if (item instanceof Error) {
            if (item instanceof SwarmpackError && item.code === CoreErrorCode.NOT_FOUND) {
              if ((item.details as Partial<SessionNotFoundDetails> | undefined)?.reason === 'stalled') stalled = true
              continue
            }
            throw item
          }
          yield item
        }
        if ((exhausted || stalled) && inflight === 0 && done.length === 0) return
        if (done.length === 0 && (exhausted || stalled || full())) {
          await new Promise<void>(resolve => { wake = resolve })
          wake = undefined
        }
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
      group.ended = true
      abortAll()
    }
  }

  /** Asks the session's peers (want-have) whether one of them holds the block. */
  async has (cid: CID, options: ProviderGetOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal)
    this.assertOpen()
    assertSupportedCid(cid)
    if (await this.host.blockstore.has(cid)) return true
    const key = multihashKey(cid)
    const existing = this.probes.get(key)
    if (existing !== undefined) {
      return new Promise(resolve => {
        const prev = existing.resolve
        existing.resolve = (has) => { prev(has); resolve(has) }
      })
    }
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => { finish(false) }, this.opts.wantTimeout)
      const onAbort = (): void => { finish(false) }
      const finish = (has: boolean): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        if (this.probes.get(key) === probe) {
          this.probes.delete(key)
          if (!this.wants.has(key) && !this.storingWants.has(key)) this.host.unregister(this, key)
        }
        resolve(has)
      }
      const probe: HaveProbe = { cid, key, resolve: finish, asked: new Set(), answered: new Set() }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.probes.set(key, probe)
      this.host.register(this, key)
      for (const peer of this.peers.keys()) this.askHave(probe, peer)
      if (this.peers.size === 0) finish(false)
    })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.controller.abort()
    const err = new SwarmpackError(BitswapErrorCode.SESSION_CLOSED, 'bitswap session closed')
    for (const want of [...this.wants.values()]) {
      for (const w of want.waiters) w.reject(err)
      want.waiters.clear()
      this.dropWant(want)
    }
    for (const want of this.storingWants.values()) {
      for (const w of want.waiters) w.reject(err)
      this.host.unregister(this, want.key)
    }
    this.storingWants.clear()
    for (const probe of [...this.probes.values()]) probe.resolve(false)
    this.host.sessionClosed(this)
  }

  // --- called by the Bitswap node ---

  /**
   * A block from `peer` passed verification and is being written to the store. Its want leaves
   * every peer's window now, not once the write is durable: the peer is asked for more blocks
   * while the store syncs (a group commit's sync would otherwise stall the window). The waiters
   * still wait for receiveBlock (R1: nothing is handed out before it is durable).
   */
  blockVerified (key: string, peer: string, size: number): void {
    if (this.storingWants.has(key)) return
    this.averageBlockSize = Math.round(this.averageBlockSize * 0.9 + size * 0.1)
    const want = this.wants.get(key)
    const p = this.peers.get(peer)
    if (p !== undefined) {
      const askedAt = want?.assigned.get(peer)
      if (askedAt !== undefined || want?.haveAsked.has(peer) === true) p.history.confirm()
      p.lastActivity = Date.now()
      p.blocks++
      p.useful++
      p.bytes += size
      p.inflight.delete(key)
      if (askedAt !== undefined) p.window.delivered(Date.now() - askedAt, this.wantsPerPeer())
    }
    if (want === undefined) return
    this.wants.delete(key)
    this.unassigned.delete(key)
    this.storingWants.set(key, want)
    for (const w of want.waiters) w.onVerified?.(true)
    for (const other of want.assigned.keys()) this.peers.get(other)?.inflight.delete(key)
    this.cancelEverywhere(want, peer)
    this.pumpUnassigned()
    if (p !== undefined) this.rebalance(p)
  }

  /**
   * The verified block from `peer` could not be stored: the want is back at `peer`, as if the
   * block never came, so it is asked again once `peer` counts as slow (not at once: a failing
   * disk would loop), and the session stalls if nothing gets stored.
   */
  blockNotStored (key: string, peer: string): void {
    const want = this.storingWants.get(key)
    if (want === undefined || this.closed) return
    this.storingWants.delete(key)
    if (want.waiters.size === 0) {
      this.host.unregister(this, key)
      return
    }
    const now = Date.now()
    want.assigned.clear()
    want.assigned.set(peer, now)
    want.lastAssign = now
    this.peers.get(peer)?.inflight.add(key)
    this.wants.set(key, want)
    for (const w of want.waiters) w.onVerified?.(false)
  }

  /** A verified block is durably stored: its waiters get it. */
  receiveBlock (key: string, bytes: Uint8Array, peer: string): void {
    // the stall clock counts stored blocks only: a disk that fails every write stalls the session
    this.lastProgress = Date.now()
    // a want made between verification and now did not see blockVerified
    if (!this.storingWants.has(key) && this.wants.has(key)) this.blockVerified(key, peer, bytes.byteLength)
    const probe = this.probes.get(key)
    if (probe !== undefined) probe.resolve(true)
    const want = this.storingWants.get(key)
    if (want === undefined) return
    this.storingWants.delete(key)
    this.host.unregister(this, key)
    for (const w of want.waiters) {
      w.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid: want.cid, size: bytes.byteLength, source: peer }))
      w.resolve(bytes)
    }
  }

  receivePresence (key: string, peer: string, have: boolean): void {
    const p = this.peers.get(peer)
    if (p !== undefined) p.lastActivity = Date.now()
    const probe = this.probes.get(key)
    if (probe !== undefined) {
      probe.answered.add(peer)
      if (have) probe.resolve(true)
      else if ([...probe.asked].every(a => probe.answered.has(a))) probe.resolve(false)
    }
    const want = this.wants.get(key)
    if (want === undefined || p === undefined) return
    if (have) {
      p.useful++
      p.history.confirm()
      want.haves.add(peer)
      want.dontHave.delete(peer)
      // the first holder we hear of gets the want-block (unless it waits for room already)
      if (this.unassigned.has(key)) this.indexWaiting(peer, key)
      else if (want.assigned.size === 0) this.assign(want)
      else this.raceLone(peer)
      return
    }
    want.haves.delete(peer)
    want.dontHave.add(peer)
    if (p.history.refuse() && ++this.refusingPeers === 1 && this.peers.size > 1) this.stopTrusting()
    if (want.assigned.delete(peer)) {
      p.inflight.delete(key)
      this.notifyRetry(want, peer, () => new SwarmpackError(CoreErrorCode.NOT_FOUND, `peer ${peer} does not have ${want.cid.toString()}`))
      this.assign(want)
      this.pumpUnassigned()
    } else if (want.assigned.size === 0) {
      // waiting for a Have (ask someone else, or if nobody is left who might say Have, nobody
      // has it), or for room at holders (this may have been the last)
      this.unassigned.delete(key)
      this.assign(want)
    }
    // else a want-block is out: its holder answers for the block (or times out and the want moves)
  }

  /** The peer disconnected, could not be reached, or was banned. */
  peerGone (peer: string, reason: string): void {
    const p = this.peers.get(peer)
    if (p === undefined) return
    this.peers.delete(peer)
    if (p.history.refused) this.refusingPeers--
    this.waitingAt.delete(peer)
    p.inflight.clear()
    this.formerPeers.set(peer, p)
    for (const probe of this.probes.values()) {
      probe.asked.delete(peer)
      if (probe.asked.size > 0 && [...probe.asked].every(a => probe.answered.has(a))) probe.resolve(false)
    }
    for (const want of [...this.wants.values()]) {
      if (want.assigned.delete(peer)) {
        this.notifyRetry(want, peer, () => new Error(reason))
        if (want.assigned.size === 0) this.assign(want)
      } else if (want.haves.has(peer) && this.unassigned.delete(want.key)) {
        // it waited for room at holders, this one among them: another, or a lookup, or give up
        this.assign(want)
      }
    }
    this.pumpUnassigned()
  }

  /** Peers asked and whether the provider lookups are done. */
  diagnostics (): SessionDiagnostics {
    return {
      peersAsked: [...this.peers.keys(), ...this.formerPeers.keys()].slice(0, MAX_LISTED),
      lookupFinished: this.discovering === undefined
    }
  }

  // --- internals ---

  private notFound (wants: SessionWant[], reason: SessionNotFoundDetails['reason'], stalledMs?: number): SwarmpackError {
    const d = this.diagnostics()
    const details: SessionNotFoundDetails = {
      reason,
      missing: wants.slice(0, MAX_LISTED).map(w => w.cid.toString()),
      missingCount: wants.length,
      ...d,
      ...(stalledMs !== undefined ? { stalledMs } : {})
    }
    const what = wants.length === 1 ? wants[0].cid.toString() : `${wants.length} blocks (first ${details.missing[0]})`
    const why = reason === 'stalled' ? `no verified block arrived for ${stalledMs} ms` : 'no peer left to ask'
    const asked = d.peersAsked.length === 0 ? 'no peer was found' : `asked ${d.peersAsked.join(', ')}`
    // a session given enough peers makes no lookup until they fail it
    const lookup = this.findProvidersFn !== undefined && this.discovered.size === 0 ? 'no provider lookup made' : `provider lookup ${d.lookupFinished ? 'finished' : 'still running'}`
    return new SwarmpackError(CoreErrorCode.NOT_FOUND, `${what} not found: ${why}; ${asked}; ${lookup}`, { details: { ...details } })
  }

  /** Nothing verified arrived for the stall time: every pending want fails (bounded wait). */
  private failStalled (stalledMs: number): void {
    const wants = [...this.wants.values()]
    const err = this.notFound(wants, 'stalled', stalledMs)
    log('session %s stalled for %d ms, failing %d wants', this.name, stalledMs, wants.length)
    // take them all out first, so failing one does not hand the next to a peer
    this.wants.clear()
    this.unassigned.clear()
    this.waitingAt.clear()
    this.waitingAny.clear()
    for (const want of wants) {
      for (const peer of want.assigned.keys()) this.peers.get(peer)?.inflight.delete(want.key)
      if (!this.probes.has(want.key)) this.host.unregister(this, want.key)
      this.cancelEverywhere(want)
    }
    for (const want of wants) for (const w of want.waiters) w.reject(err)
  }

  private assertOpen (): void {
    if (this.closed) throw new SwarmpackError(BitswapErrorCode.SESSION_CLOSED, 'bitswap session closed')
  }

  private askHave (probe: HaveProbe, peer: string): void {
    const p = this.peers.get(peer)
    if (p === undefined || probe.asked.has(peer)) return
    probe.asked.add(peer)
    this.host.sendWant(p.id, probe.cid, WantType.WantHave, true)
  }

  /** Peers that may still be asked for the want: in the session, not banned, not holding it, not refused. */
  private candidates (want: SessionWant): SessionPeer[] {
    const out: SessionPeer[] = []
    for (const [key, p] of this.peers) {
      if (want.assigned.has(key) || want.dontHave.has(key) || this.host.isBanned(key)) continue
      out.push(p)
    }
    return out
  }

  /**
   * Whether `peer` may get the want-block: it said Have, is the session's only peer, the want
   * waited too long, or no peer has said DontHave yet (see `trusting`).
   */
  private mayAskBlock (want: SessionWant, peer: string): boolean {
    return want.haves.has(peer) || want.direct || this.peers.size === 1 || this.trusting()
  }

  /**
   * No peer of the session has said DontHave: every one is taken to hold the package (those
   * named for it, or found through the root's provider records, usually do), so want-blocks go
   * out at once, spread by window room, with no want-have round trip first; peers not yet
   * confirmed (see peer-history.ts) also get want-haves alongside, so a DontHave finds another
   * holder at once. Ends with the first DontHave: from then on, want-haves first (a swarm of
   * downloaders, who each hold a part).
   */
  private trusting (): boolean {
    return this.refusingPeers === 0 && this.peers.size > 1
  }

  /**
   * The first DontHave: wants waiting for room at any peer (because the session trusted every
   * peer) are asked with want-haves instead.
   */
  private stopTrusting (): void {
    if (this.discovering !== undefined) return // those wait for the lookup; it reassigns them
    for (const key of [...this.waitingAny]) {
      const want = this.wants.get(key)
      if (want !== undefined && want.direct) continue
      this.waitingAny.delete(key)
      if (want === undefined || !this.unassigned.delete(key)) continue
      this.assign(want)
    }
  }

  /**
   * Whether `p` takes more want-blocks now: when idle, or once a quarter of its window is free, so
   * wants (and the blocks answering them) travel several to a message rather than one by one: in
   * a swarm the per-message cost (noise, yamux, a syscall) outweighs the bytes.
   */
  private hasRoom (p: SessionPeer, limit: number): boolean {
    return p.inflight.size === 0 || limit - p.inflight.size >= Math.max(1, Math.floor(limit / 4))
  }

  /** Want-blocks `p` may hold: the session's per-peer limit, narrowed by its window when there are others to ask. */
  private limitOf (p: SessionPeer): number {
    const cap = this.wantsPerPeer()
    return this.peers.size > 1 ? p.window.limit(cap) : cap
  }

  /**
   * Sends the want-block to the candidate that may get it with the most room in its window (ties:
   * at random, so peers asking at the same time spread over the holders). With a holder but no
   * room, the want waits its turn; with no holder yet, it waits for a Have; with no candidate at
   * all, providers are looked up or the want fails.
   */
  private assign (want: SessionWant): boolean {
    let best: SessionPeer | undefined
    let bestLoad = Infinity
    let ties = 0
    let holders = 0
    let open = 0
    for (const [key, p] of this.peers) {
      if (want.assigned.has(key) || want.dontHave.has(key) || this.host.isBanned(key)) continue
      open++
      if (!this.mayAskBlock(want, key)) continue
      holders++
      const limit = this.limitOf(p)
      if (!this.hasRoom(p, limit)) continue
      const load = (p.inflight.size + 1) / limit
      if (load < bestLoad) {
        best = p
        bestLoad = load
        ties = 1
      } else if (load === bestLoad && Math.random() * ++ties < 1) {
        best = p
      }
    }
    if (best === undefined) {
      if (holders > 0) {
        this.waitForRoom(want)
      } else {
        this.unassigned.delete(want.key)
        if (open > 0) this.askHaves(want)
        else if (want.assigned.size === 0) this.noCandidates(want)
      }
      return false
    }
    this.sendBlockWant(want, best, best.id.toString())
    return true
  }

  private sendBlockWant (want: SessionWant, p: SessionPeer, key: string): void {
    this.unassigned.delete(want.key)
    const now = Date.now()
    want.assigned.set(key, now)
    want.lastAssign = now
    if (p.inflight.size === 0) p.lastActivity = now
    p.inflight.add(want.key)
    this.host.sendWant(p.id, want.cid, WantType.WantBlock, true)
    // the others learn we want it: they say whether they hold it, and Have later if they get it
    // (while trusting, only those not yet confirmed: the rest would only say Have)
    this.askHaves(want, this.trusting())
  }

  /**
   * The session's only want (a package root, a last block): everything waits on it. It is asked
   * of every peer and raced: a Have gets a want-block too while the peer holding it has not said
   * it holds the block, at the cost of one block sent twice. Trusting a session's first peers is a
   * bet on each want; for this one the bet blocks the whole fetch: in a swarm told twenty peers,
   * it went to a peer that held nothing yet, which took seconds to say so.
   */
  private isLone (want: SessionWant): boolean {
    return this.wants.size === 1 && this.wants.has(want.key)
  }

  /** `peer` said Have for the lone want, or announced the root: it gets the want-block too, unless a holder has it already. */
  private raceLone (peer: string): void {
    if (this.wants.size !== 1) return
    const want = this.wants.values().next().value as SessionWant
    const p = this.peers.get(peer)
    if (p === undefined || want.assigned.has(peer) || want.dontHave.has(peer) || this.host.isBanned(peer)) return
    if (want.assigned.size === 0 || this.heldByAssignee(want)) return
    this.sendBlockWant(want, p, peer)
  }

  /** A peer holding the want-block has said Have for it, or is taken to hold the whole package. */
  private heldByAssignee (want: SessionWant): boolean {
    for (const key of want.assigned.keys()) {
      if (want.haves.has(key) || this.peers.get(key)?.history.complete === true) return true
    }
    return false
  }

  /**
   * Want-have (send-dont-have) to SESSION_WANT_HAVE_FANOUT peers not yet asked for the want, when
   * there is a choice of peers and none asked may still say Have (every peer, for a lone want):
   * topping up after each DontHave asked every block of everyone in a swarm of downloaders, whose
   * DontHaves come back before the seed's Have;
   * a quarter the most useful so far (they said Have or delivered most), the rest at random, so
   * every peer's blocks get found and the asking does not pile onto the same few peers.
   */
  private askHaves (want: SessionWant, onlyUnconfirmed = false): void {
    if (this.peers.size < 2) return
    let pending = 0
    const unasked: SessionPeer[] = []
    for (const [key, p] of this.peers) {
      if (want.assigned.has(key) || want.dontHave.has(key) || this.host.isBanned(key)) continue
      if (want.haveAsked.has(key) || want.haves.has(key)) pending++
      else if (!onlyUnconfirmed || !p.history.complete) unasked.push(p)
    }
    let room = this.isLone(want) ? Infinity : pending > 0 ? 0 : SESSION_WANT_HAVE_FANOUT
    if (room <= 0 || unasked.length === 0) return
    const picked: SessionPeer[] = []
    if (unasked.length <= room) {
      picked.push(...unasked)
    } else {
      unasked.sort((a, b) => b.useful - a.useful)
      const best = Math.ceil(room / 4)
      picked.push(...unasked.splice(0, best))
      room -= best
      while (room-- > 0) picked.push(unasked.splice(Math.floor(Math.random() * unasked.length), 1)[0])
    }
    // with no want-block out, the want waits on these answers (a lone want waits on them
    // anyway: its holder may hold nothing); otherwise they are for later
    const urgent = want.assigned.size === 0 || this.isLone(want)
    for (const p of picked) {
      want.haveAsked.add(p.id.toString())
      this.host.sendWant(p.id, want.cid, WantType.WantHave, urgent)
    }
  }

  /**
   * Work stealing for the tail of a fetch: a peer about to run dry takes over the newest wants of
   * the busiest peer (they sit at the back of that peer's queue), which gets a cancel for them.
   */
  private rebalance (idle: SessionPeer): void {
    if (this.unassigned.size > 0) return
    const low = Math.max(1, Math.floor(this.wantsPerPeer() / 8))
    if (idle.inflight.size >= low) return
    let busiest: SessionPeer | undefined
    for (const p of this.peers.values()) {
      if (p !== idle && (busiest === undefined || p.inflight.size > busiest.inflight.size)) busiest = p
    }
    if (busiest === undefined || busiest.inflight.size <= idle.inflight.size + 2 * low) return
    const idleKey = idle.id.toString()
    const busyKey = busiest.id.toString()
    const now = Date.now()
    const move = Math.floor((busiest.inflight.size - idle.inflight.size) / 2)
    for (const key of [...busiest.inflight].slice(-move)) {
      const want = this.wants.get(key)
      // only to a peer known to hold it (or any peer, while the session trusts them all)
      if (want === undefined || want.assigned.size !== 1 || want.dontHave.has(idleKey) || !(want.haves.has(idleKey) || this.trusting())) continue
      busiest.inflight.delete(key)
      want.assigned.delete(busyKey)
      this.host.sendCancel(busiest.id, want.cid, this)
      want.assigned.set(idleKey, now)
      want.lastAssign = now
      idle.inflight.add(key)
      this.host.sendWant(idle.id, want.cid, WantType.WantBlock, true)
    }
  }

  /** How many want-blocks one peer may hold: fixed, or enough for the byte target at the average block size. */
  private wantsPerPeer (): number {
    if (this.fixedWantsPerPeer !== undefined) return this.fixedWantsPerPeer
    const n = Math.round(this.opts.bytesInFlightPerPeer / Math.max(1, this.averageBlockSize))
    return Math.min(MAX_ADAPTIVE_WANTS_PER_PEER, Math.max(MIN_ADAPTIVE_WANTS_PER_PEER, n))
  }

  /** Nobody left to ask: look for providers, or give up on the want. */
  private noCandidates (want: SessionWant): void {
    if (this.discovering !== undefined) {
      this.waitForRoom(want)
      return
    }
    const target = this.root !== undefined && !this.recentlyDiscovered(this.root) ? this.root : want.cid
    if (this.findProvidersFn !== undefined && !this.recentlyDiscovered(target)) {
      this.waitForRoom(want)
      this.discover(target)
      return
    }
    this.unassigned.delete(want.key)
    this.wants.delete(want.key)
    this.host.unregister(this, want.key)
    // peers that said DontHave still keep the want, to answer if the block reaches them later
    this.cancelEverywhere(want)
    const err = this.notFound([want], 'no-peers')
    for (const w of want.waiters) w.reject(err)
  }

  /** Providers of `cid` were looked up less than `rediscoverAfter` ago. */
  private recentlyDiscovered (cid: CID): boolean {
    const at = this.discovered.get(cid.toString())
    return at !== undefined && Date.now() - at < this.opts.rediscoverAfter
  }

  private discover (cid: CID): void {
    const find = this.findProvidersFn
    if (find === undefined || this.closed) return
    this.discovered.set(cid.toString(), Date.now())
    log('finding providers of %s', cid)
    this.discovering = (async () => {
      try {
        const isRoot = this.root !== undefined && cid.equals(this.root)
        for await (const peer of find(cid, { signal: this.controller.signal })) {
          if (this.closed) break
          // a root's provider records come from peers holding the whole package
          this.join(peer, isRoot)
        }
      } catch (err) {
        if (!this.closed) log('finding providers of %s failed: %s', cid, (err as Error).message)
      }
    })().finally(() => {
      this.discovering = undefined
      // wants still without a peer either get one now or give up
      this.pumpUnassigned(true)
    })
  }

  /**
   * Wants waiting for room go out as peers get it: each peer with room (most room first) takes
   * the oldest waiting wants it may be asked for. Driven by the peers, not the wants, so a wide
   * window costs a scan of the waiting wants per block, not one per want and peer.
   */
  private pumpUnassigned (afterDiscovery = false): void {
    if (this.unassigned.size === 0) return
    if (afterDiscovery) {
      // wants that waited for the lookup: each finds a peer now or gives up
      for (const key of [...this.unassigned]) {
        const want = this.wants.get(key)
        if (want === undefined) this.unassigned.delete(key)
        else this.assign(want)
      }
      return
    }
    const withRoom: Array<[string, SessionPeer, number]> = []
    // only peers that may take a waiting want: every peer while some want waits for any, else
    // just the holders wants wait at (this runs for every block and presence, and a swarm's
    // session knows twenty peers)
    const anyWaits = this.waitingAny.size > 0
    for (const key of anyWaits ? this.peers.keys() : this.waitingAt.keys()) {
      const p = this.peers.get(key)
      if (p === undefined || (!anyWaits && this.waitingAt.get(key)?.size === 0)) continue
      const limit = this.limitOf(p)
      if (this.hasRoom(p, limit) && !this.host.isBanned(key)) withRoom.push([key, p, limit])
    }
    withRoom.sort((a, b) => a[1].inflight.size / a[2] - b[1].inflight.size / b[2])
    for (const [peerKey, p, limit] of withRoom) {
      const own = this.waitingAt.get(peerKey)
      if (own !== undefined) this.takeWaiting(own, peerKey, p, limit)
      if (anyWaits) this.takeWaiting(this.waitingAny, peerKey, p, limit)
      if (this.unassigned.size === 0) return
    }
  }

  /** Parks a want until a peer that may get it has room. */
  private waitForRoom (want: SessionWant): void {
    this.unassigned.add(want.key)
    // (a want waiting for a lookup needs no set: the lookup's end reassigns every unassigned want)
    if (this.anyMayTake(want)) this.waitingAny.add(want.key)
    for (const h of want.haves) this.indexWaiting(h, want.key)
  }

  private indexWaiting (peer: string, key: string): void {
    let set = this.waitingAt.get(peer)
    if (set === undefined) { set = new Set(); this.waitingAt.set(peer, set) }
    set.add(key)
  }

  /**
   * `p` (with room up to `limit`) takes the oldest wants of `from` it may be asked for. A want
   * `from` no longer offers leaves it here (it stays in `unassigned` and its holders' sets): left
   * in, it was scanned again for every block and peer, 2.7 % of a 1+20 swarm's CPU.
   */
  private takeWaiting (from: Set<string>, peerKey: string, p: SessionPeer, limit: number): void {
    const any = from === this.waitingAny
    for (const key of from) {
      if (p.inflight.size >= limit) return
      const want = this.unassigned.has(key) ? this.wants.get(key) : undefined
      if (want === undefined) { from.delete(key); continue }
      if (want.assigned.has(peerKey) || want.dontHave.has(peerKey) || !this.mayAskBlock(want, peerKey)) {
        // a peer's own set: it cannot take this one any more; the any-set: nobody may take it unasked
        if (!any || !this.anyMayTake(want)) from.delete(key)
        continue
      }
      from.delete(key)
      this.sendBlockWant(want, p, peerKey)
    }
  }

  /** Any peer that has not refused the want may get its want-block (see `waitForRoom`). */
  private anyMayTake (want: SessionWant): boolean {
    return want.direct || this.peers.size <= 1 || this.trusting()
  }

  /**
   * Waiting wants whose every holder is gone, refused, or stuck (holding our wants, delivering
   * nothing for three `wantTimeout`s: not merely slow on a loaded machine) are asked elsewhere (or
   * given up), so none waits unbounded for room that never comes.
   */
  private recheckUnassigned (now: number): void {
    for (const key of [...this.unassigned]) {
      const want = this.wants.get(key)
      if (want === undefined) { this.unassigned.delete(key); continue }
      let live = false
      for (const h of want.haves) {
        const p = this.peers.get(h)
        if (p !== undefined && !want.dontHave.has(h) && !this.host.isBanned(h) &&
          (p.inflight.size === 0 || now - p.lastActivity < STUCK_AFTER_WANT_TIMEOUTS * this.opts.wantTimeout)) { live = true; break }
      }
      if (live || this.mayAskBlock(want, '')) continue
      want.direct = true
      this.unassigned.delete(key)
      this.assign(want)
    }
  }

  /** Wants whose peers went quiet are also sent to another peer (the first may still answer). */
  private checkSlowPeers (): void {
    const now = Date.now()
    if (this.wants.size > 0 && now - this.lastProgress >= this.opts.stallTimeout) {
      this.failStalled(now - this.lastProgress)
      return
    }
    this.recheckUnassigned(now)
    for (const want of [...this.wants.values()]) {
      if (now - want.lastAssign < this.opts.wantTimeout || this.unassigned.has(want.key)) continue
      if (want.assigned.size === 0) {
        // asked with want-have and nobody confirmed it in time (or the answers got lost): ask a
        // peer that has not refused it for the block itself
        if (!this.wants.has(want.key)) continue
        want.direct = true
        want.lastAssign = now
        this.assign(want)
        continue
      }
      let slow: string | undefined
      for (const [peer, askedAt] of want.assigned) {
        const p = this.peers.get(peer)
        if (p === undefined || now - Math.max(askedAt, p.lastActivity) >= this.opts.wantTimeout) { slow = peer; break }
      }
      if (slow === undefined) continue
      want.lastAssign = now
      // a slow holder's want goes to another peer too: one that said Have, else any that has not refused it
      const others = this.candidates(want)
      if (others.length > 0) {
        this.notifyRetry(want, slow, () => new Error(`peer ${slow} is slow`))
        if (!others.some(o => want.haves.has(o.id.toString()))) want.direct = true
        this.assign(want)
      } else if (this.findProvidersFn !== undefined && this.discovering === undefined && !this.recentlyDiscovered(want.cid) && this.wantsMorePeers()) {
        // (a session that knows enough peers waits on its holder: in a swarm of twenty, a lookup
        // per slow block put every peer to work answering it, for peers it knows already)
        this.discover(want.cid)
      } else {
        // nobody else to ask: say it again, in case the message or the block got lost on a reset stream
        for (const peer of want.assigned.keys()) {
          const p = this.peers.get(peer)
          if (p === undefined) continue
          want.assigned.set(peer, now)
          this.notifyRetry(want, peer, () => new Error(`peer ${peer} is slow, asking again`))
          this.host.sendWant(p.id, want.cid, WantType.WantBlock, true)
        }
      }
    }
  }

  /** `error` is made only when someone reads it: a DontHave per block per peer made one each, 0.8 % of a swarm's CPU. */
  private notifyRetry (want: SessionWant, source: string, error: () => Error): void {
    let listening = log.enabled
    for (const w of want.waiters) listening ||= w.onProgress !== undefined
    if (!listening) return
    const err = error()
    log('re-asking for %s: %s', want.cid, err.message)
    for (const w of want.waiters) w.onProgress?.(new CustomProgressEvent('swarmpack:provider:retry', { cid: want.cid, source, error: err }))
  }

  /** Withdraws the want from every peer that holds it (want-block or want-have, answered or not), except `except`. */
  private cancelEverywhere (want: SessionWant, except?: string): void {
    for (const peer of new Set([...want.assigned.keys(), ...want.dontHave, ...want.haveAsked])) {
      if (peer === except) continue
      const p = this.peers.get(peer)
      if (p !== undefined) this.host.sendCancel(p.id, want.cid, this)
    }
  }

  private dropWant (want: SessionWant): void {
    this.wants.delete(want.key)
    this.unassigned.delete(want.key)
    for (const peer of want.assigned.keys()) this.peers.get(peer)?.inflight.delete(want.key)
    this.cancelEverywhere(want)
    want.assigned.clear()
    if (!this.probes.has(want.key)) this.host.unregister(this, want.key)
    this.pumpUnassigned()
  }

  /** Whether this session waits for the block (want or have probe). */
  wantsKey (key: string): boolean {
    return this.wants.has(key) || this.storingWants.has(key) || this.probes.has(key)
  }

  /** The CID this session asked under, to verify a block against it. */
  wantedCid (key: string): CID | undefined {
    return this.wants.get(key)?.cid ?? this.probes.get(key)?.cid
  }

  /** Whether this session still has a want for the key at `peer` (so another session's cancel must not withdraw it). */
  hasAsked (key: string, peer: string): boolean {
    const want = this.wants.get(key)
    return want !== undefined && (want.assigned.has(peer) || want.haveAsked.has(peer))
  }
}
