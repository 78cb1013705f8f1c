/**
 * swarmpack's Bitswap 1.2.0 node: serves blocks from a blockstore (unless in consume mode) and
 * fetches blocks through sessions. Every block received is checked against the CID we asked for
 * before it is stored and handed out; a peer sending bytes that match nothing it was asked for is
 * disconnected and banned.
 */
import { logger } from '@libp2p/logger'
import { SwarmpackError, verifyBlock } from '@swarmpack/core'
import { BanList } from './ban-list.js'
import { DEFAULT_MAX_PROTOCOL_VIOLATIONS, DEFAULT_MAX_UNSOLICITED_BLOCKS, RECENT_WANT_WINDOW_MS } from './constants.js'
import { Engine } from './engine.js'
import { BitswapErrorCode } from './errors.js'
import { BitswapNetwork } from './network.js'
import { BitswapSession } from './session.js'
import { BlockPresenceType, WantType, decodeCid, multihashKey, payloadKey } from './wire.js'
import type { LedgerStats } from './ledger.js'
import type { SessionHost, SessionOptions } from './session.js'
import type { Block, Message, WantlistEntry } from './wire.js'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Blockstore } from 'interface-blockstore'
import { CID } from 'multiformats/cid'

const log = logger('swarmpack:bitswap')

/** Received bytes being stored at once before more messages are read (see onMessage). */
const MAX_STORING_BYTES = 32 * 1024 * 1024

/** Wants remembered per peer (see `asked`) before the cancelled ones are pruned; the next prune waits for twice as many. */
const ASKED_PRUNE_FLOOR = 4096

export interface BitswapInit {
  libp2p: Libp2p
  /** Where served blocks come from and fetched blocks go (interface-blockstore v7). */
  blockstore: Pick<Blockstore, 'has' | 'get' | 'put'>
  /** false = consume mode: never send blocks (peers asking with send-dont-have get DontHave). Default true. */
  serve?: boolean
  /** Wants a peer may hold with us at once (default 1024). */
  maxWantlistSize?: number
  /** Block bytes loaded for one peer before its stream must accept them (default 4 MiB; a turn is also capped by the 2 MiB message). */
  maxBytesInFlightPerPeer?: number
  /** Peers served concurrently (default 8). */
  maxConcurrentSends?: number
  /** Largest message we send; bigger content is split (default 2 MiB). */
  maxMessageSize?: number
  /** Largest message we accept; a bigger one resets the stream (default 4 MiB, what Kubo and Helia send). */
  maxIncomingMessageSize?: number
  /** Cancels and want-haves alone wait this long for company before they are sent (ms, default 300; see WANT_BATCH_MS). */
  wantBatchMs?: number
  /** Default for sessions: a peer holding our wants that delivers nothing for this long is passed over (ms). */
  wantTimeout?: number
  /** Unrequested blocks tolerated from a peer before it is banned (default 16). */
  maxUnsolicitedBlocks?: number
  /** Oversized or malformed messages (each resets its stream) before the peer is banned (default 8). */
  maxProtocolViolations?: number
  /** Shared ban list (e.g. also consulted by the connection gater). */
  banList?: BanList
  /** How long a ban lasts (default one hour). */
  banDurationMs?: number
}

export interface BitswapPeerStats extends LedgerStats {
  /** Blocks from this peer that matched nothing we asked it for. */
  unsolicitedBlocks: number
}

export interface BitswapStats {
  peers: BitswapPeerStats[]
  bytesSent: number
  bytesReceived: number
  blocksSent: number
  blocksReceived: number
  /** Blocks that arrived twice (asked of several peers) or late. */
  duplicateBlocks: number
  /** Bitswap messages sent and received (all peers). */
  messagesSent: number
  messagesReceived: number
  /** What the received messages held, entry by entry: in a swarm the control entries cost more CPU than the blocks. */
  entriesReceived: EntryCounts
  banned: Array<{ peer: string, reason: string, until: number }>
}

export interface EntryCounts {
  wantBlocks: number
  wantHaves: number
  cancels: number
  haves: number
  dontHaves: number
  blocks: number
}

interface Asked {
  cid: CID
  type: WantType
  /** The peer answered with a presence: it no longer owes us the block (a cancel may still follow). */
  answered?: boolean
  /** It answered a want-have with Have, which ends that want at its side: no cancel is owed. */
  saidHave?: boolean
  /** A want for this block has left for the peer (else it still waits in the batch, and a cancel just drops it). */
  sent?: boolean
  /** Set when the want was cancelled or the block came; late blocks are excused for a while after. */
  cancelledAt?: number
}

/** A received block that matched a want and was verified. */
interface Accepted {
  key: string
  cid: CID
  data: Uint8Array
}

interface OutgoingWants {
  peer: PeerId
  entries: Map<string, WantlistEntry>
  /** Holds a want someone waits on (a want-block, a first want-have): sent on the next tick. The rest waits for WANT_BATCH_MS. */
  urgent: boolean
}

/**
 * Cancels and want-haves alone wait this long for company before they are sent: in a swarm every
 * block brings a cancel or a want-have for several peers, and one message per peer per block
 * costs more CPU (noise, yamux, a syscall each) than the bytes do. Want-blocks go out at once,
 * and batched wants ride along with whatever the engine sends the peer meanwhile.
 */
const WANT_BATCH_MS = 300

export class Bitswap {
  readonly libp2p: Libp2p
  readonly blockstore: Pick<Blockstore, 'has' | 'get' | 'put'>
  readonly banList: BanList
  readonly serve: boolean
  private readonly init: BitswapInit
  private readonly network: BitswapNetwork
  private readonly engine: Engine
  private readonly sessions = new Set<BitswapSession>()
  /** Sessions waiting for each block (by multihash). */
  private readonly wanted = new Map<string, Set<BitswapSession>>()
  /** What we asked each peer for, so late or unasked blocks can be told apart. */
  private readonly asked = new Map<string, Map<string, Asked>>()
  /** Verified blocks being written to the blockstore, so a second copy is not stored twice. */
  private readonly storing = new Set<string>()
  /** Bytes of verified blocks being written to the blockstore (see onMessage). */
  private storingBytes = 0
  private readonly storeWaiters: Array<() => void> = []
  /** Size of each peer's `asked` map at which it is pruned next. */
  private readonly askedPruneAt = new Map<string, number>()
  private readonly outgoing = new Map<string, OutgoingWants>()
  /** PeerIds of the peers that sent us messages, by string (see peerIdOf). */
  private readonly peerIds = new Map<string, PeerId>()
  private readonly unsolicited = new Map<string, number>()
  private readonly violations = new Map<string, number>()
  private flushScheduled = false
  private batchTimer?: ReturnType<typeof setTimeout>
  private duplicateBlocks = 0
  private readonly entriesReceived: EntryCounts = { wantBlocks: 0, wantHaves: 0, cancels: 0, haves: 0, dontHaves: 0, blocks: 0 }
  private running = false
  private readonly onPeerConnect: (evt: CustomEvent<PeerId>) => void
  private readonly sessionHost: SessionHost

  constructor (init: BitswapInit) {
    this.init = init
    this.libp2p = init.libp2p
    this.blockstore = init.blockstore
    this.serve = init.serve ?? true
    this.banList = init.banList ?? new BanList()
    this.network = new BitswapNetwork(this.libp2p, {
      onMessage: async (peer, message) => { await this.onMessage(peer, message) },
      onProtocolViolation: (peer, reason) => {
        // each one already cost the peer its stream; a peer that keeps at it is hostile
        const key = peer.toString()
        const count = (this.violations.get(key) ?? 0) + 1
        this.violations.set(key, count)
        log('protocol violation %d by %p: %s', count, peer, reason)
        if (count >= (this.init.maxProtocolViolations ?? DEFAULT_MAX_PROTOCOL_VIOLATIONS)) this.ban(peer, `repeated protocol violations: ${reason}`)
      },
      onPeerDisconnected: (peer) => { this.peerGone(peer.toString(), 'disconnected') },
      isBanned: (peer) => this.banList.isBanned(peer)
    }, { maxMessageSize: init.maxMessageSize, maxIncomingMessageSize: init.maxIncomingMessageSize })
    this.engine = new Engine({
      blockstore: this.blockstore,
      serve: this.serve,
      maxWantlistSize: init.maxWantlistSize,
      maxBytesInFlightPerPeer: init.maxBytesInFlightPerPeer,
      maxConcurrentSends: init.maxConcurrentSends,
      send: async (peer, content) => {
        const target = this.peerIdOf(peer)
        if (target === undefined) throw new Error(`no connection to ${peer}`)
        // wants batched for this peer ride along: in a swarm every pair trades both ways, and a
        // message of its own costs more CPU (noise, yamux, a syscall each side) than its entries
        const out = this.outgoing.get(peer)
        if (out !== undefined && out.entries.size > 0) {
          this.outgoing.delete(peer)
          content = { ...content, wants: this.takeEntries(peer, out.entries) }
        }
        await this.network.send(target, content)
      }
    })
    this.sessionHost = this.makeSessionHost()
    this.onPeerConnect = (evt) => {
      if (this.banList.isBanned(evt.detail)) this.libp2p.hangUp(evt.detail).catch(() => {})
    }
  }

  get isStarted (): boolean {
    return this.running
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.libp2p.addEventListener('peer:connect', this.onPeerConnect)
    await this.network.start()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    clearTimeout(this.batchTimer)
    this.libp2p.removeEventListener('peer:connect', this.onPeerConnect)
    for (const session of [...this.sessions]) await session.close()
    this.engine.stop()
    await this.network.stop()
  }

  /** A fetch session (see SessionOptions). Close it when done. */
  createSession (options: SessionOptions = {}): BitswapSession {
    if (!this.running) throw new SwarmpackError(BitswapErrorCode.NOT_STARTED, 'bitswap is not started')
    const session = new BitswapSession(this.sessionHost, { wantTimeout: this.init.wantTimeout, ...options })
    this.sessions.add(session)
    return session
  }

  /**
   * Blocks just added to the blockstore by someone else (a download, an HTTP mirror): peers
   * waiting for them are answered now.
   */
  notifyNewBlocks (blocks: Iterable<CID | { cid: CID }>): void {
    const cids: CID[] = []
    for (const b of blocks) cids.push(CID.asCID(b) ?? (b as { cid: CID }).cid)
    this.engine.notifyNewBlocks(cids)
  }

  /** Disconnects the peer and refuses it from now on (for `durationMs`, default one hour). */
  ban (peer: PeerId | string, reason = 'banned', durationMs = this.init.banDurationMs): void {
    const key = peer.toString()
    log('banning %s: %s', key, reason)
    this.banList.ban(key, reason, durationMs)
    this.peerGone(key, `banned: ${reason}`)
    const id = this.peerIdOf(key)
    if (id !== undefined) this.libp2p.hangUp(id).catch(() => {})
  }

  isBanned (peer: PeerId | string): boolean {
    return this.banList.isBanned(peer)
  }

  stats (): BitswapStats {
    const peers: BitswapPeerStats[] = [...this.engine.ledgers.values()].map(l => ({ ...l.stats(), unsolicitedBlocks: this.unsolicited.get(l.peer) ?? 0 }))
    const sum = (f: (p: BitswapPeerStats) => number): number => peers.reduce((n, p) => n + f(p), 0)
    return {
      peers,
      bytesSent: sum(p => p.bytesSent),
      bytesReceived: sum(p => p.bytesReceived),
      blocksSent: sum(p => p.blocksSent),
      blocksReceived: sum(p => p.blocksReceived),
      duplicateBlocks: this.duplicateBlocks,
      messagesSent: this.network.messagesSent,
      messagesReceived: this.network.messagesReceived,
      entriesReceived: { ...this.entriesReceived },
      banned: this.banList.list()
    }
  }

  // --- session host ---

  private makeSessionHost (): SessionHost {
    return {
    blockstore: this.blockstore,
    selfId: this.libp2p.peerId.toString(),
    isBanned: (peer) => this.banList.isBanned(peer),
    register: (session, key) => {
      let set = this.wanted.get(key)
      if (set === undefined) { set = new Set(); this.wanted.set(key, set) }
      set.add(session)
    },
    unregister: (session, key) => {
      const set = this.wanted.get(key)
      if (set === undefined) return
      set.delete(session)
      if (set.size === 0) this.wanted.delete(key)
    },
    sendWant: (peer, cid, type, urgent) => { this.queueWant(peer, cid, type, false, urgent) },
    sendCancel: (peer, cid, session) => {
      const key = multihashKey(cid)
      const peerKey = peer.toString()
      for (const other of this.wanted.get(key) ?? []) {
        if (other !== session && other.hasAsked(key, peerKey)) return
      }
      this.queueWant(peer, cid, WantType.WantBlock, true, false)
    },
    sessionClosed: (session) => { this.sessions.delete(session) }
    }
  }

  // --- outgoing wants, batched per peer (want-blocks per tick, the rest per WANT_BATCH_MS) ---

  private queueWant (peer: PeerId, cid: CID, type: WantType, cancel: boolean, urgent: boolean): void {
    if (!this.running) return
    const peerKey = peer.toString()
    const key = multihashKey(cid)
    let asked = this.asked.get(peerKey)
    if (asked === undefined) { asked = new Map(); this.asked.set(peerKey, asked) }
    const prev = asked.get(key)
    if (cancel) {
      if (prev === undefined || prev.cancelledAt !== undefined) return
      prev.cancelledAt = Date.now()
      // in a swarm most of the peers asked say Have: a cancel to each would be a wasted entry
      if (prev.saidHave === true && prev.type === WantType.WantHave) return
      if (prev.sent !== true) {
        // it never left: take it out of the batch, and the peer never hears of it
        this.outgoing.get(peerKey)?.entries.delete(key)
        return
      }
    } else {
      if (asked.size >= (this.askedPruneAt.get(peerKey) ?? ASKED_PRUNE_FLOOR)) {
        // amortized: a fetch of many blocks keeps thousands of recent wants, and pruning on every
        // new want would scan them all each time
        this.pruneAsked(asked)
        this.askedPruneAt.set(peerKey, Math.max(ASKED_PRUNE_FLOOR, asked.size * 2))
      }
      const open = prev !== undefined && prev.cancelledAt === undefined
      asked.set(key, { cid, type: open && prev.type === WantType.WantBlock ? WantType.WantBlock : type, sent: open ? prev.sent : undefined })
    }
    let out = this.outgoing.get(peerKey)
    if (out === undefined) { out = { peer, entries: new Map(), urgent: false }; this.outgoing.set(peerKey, out) }
    const pending = out.entries.get(key)
    if (!cancel && pending !== undefined && pending.cancel !== true && pending.wantType === WantType.WantBlock) return
    out.entries.set(key, cancel
      ? { block: cid.bytes, priority: 1, cancel: true }
      : { block: cid.bytes, priority: 1, wantType: type, sendDontHave: true })
    if (!cancel && urgent) out.urgent = true
    if (out.urgent && !this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => { this.flushWants(true) })
    } else if (!out.urgent && this.batchTimer === undefined) {
      this.batchTimer = setTimeout(() => { this.flushWants(false) }, this.init.wantBatchMs ?? WANT_BATCH_MS)
      this.batchTimer.unref?.()
    }
  }

  /** Sends the batched wants: the urgent ones (want-blocks) only, or everything when the batch timer fired. */
  private flushWants (urgentOnly: boolean): void {
    if (urgentOnly) this.flushScheduled = false
    else this.batchTimer = undefined
    const batches: OutgoingWants[] = []
    for (const [key, out] of this.outgoing) {
      if (urgentOnly && !out.urgent) continue
      batches.push(out)
      this.outgoing.delete(key)
    }
    for (const { peer, entries } of batches) {
      if (!this.running) return
      if (entries.size === 0) continue
      this.network.send(peer, { wants: this.takeEntries(peer.toString(), entries) }).catch(err => {
        // unreachable: sessions move its wants elsewhere
        log('sending wants to %p failed: %s', peer, err.message)
        this.peerGone(peer.toString(), `unreachable: ${err.message as string}`)
      })
    }
  }

  /** The entries of a batch, leaving now: their wants count as sent (a later cancel must go out). */
  private takeEntries (peerKey: string, entries: Map<string, WantlistEntry>): WantlistEntry[] {
    const asked = this.asked.get(peerKey)
    if (asked !== undefined) {
      for (const [key, e] of entries) {
        if (e.cancel === true) continue
        const a = asked.get(key)
        if (a !== undefined) a.sent = true
      }
    }
    return [...entries.values()]
  }

  // --- incoming ---

  private async onMessage (peer: PeerId, message: Message): Promise<void> {
    if (!this.running || this.banList.isBanned(peer)) return
    const peerKey = peer.toString()
    if (!this.peerIds.has(peerKey)) this.peerIds.set(peerKey, peer)
    this.countEntries(message)
    if (message.wantlist !== undefined) this.engine.receiveWantlist(peerKey, message.wantlist)
    // check every block first (synchronously), then store the good ones together
    const accepted: Accepted[] = []
    for (const block of message.payload) {
      const good = this.checkBlock(peer, peerKey, block)
      if (this.banList.isBanned(peer)) break
      if (good !== undefined) accepted.push(good)
    }
    if (accepted.length > 0) {
      // the sessions' windows open now, so the peer is asked for more while these are written
      this.verified(peerKey, accepted)
      // Bounded: past MAX_STORING_BYTES the message queue waits (and with it the stream).
      const size = accepted.reduce((n, a) => n + a.data.byteLength, 0)
      while (this.storingBytes > 0 && this.storingBytes + size > MAX_STORING_BYTES) {
        await new Promise<void>(resolve => { this.storeWaiters.push(resolve) })
      }
      this.storingBytes += size
      // Stored in the background, so the peer's next message is checked while these are written
      // (a durable store commits in batches: one sync per batch, not per message), and handed to
      // the sessions once stored: what a fetch reports it has survives a crash (resume, R1).
      void this.storeAndDeliver(peerKey, accepted)
        .catch((err: unknown) => { log.error('delivering blocks from %s failed: %e', peerKey, err) })
        .finally(() => {
          this.storingBytes -= size
          for (const wake of this.storeWaiters.splice(0)) wake()
        })
    }
    if (this.banList.isBanned(peer)) return
    for (const presence of message.blockPresences) {
      const cid = decodeCid(presence.cid)
      if (cid === undefined) continue
      const key = multihashKey(cid)
      // an answered want no longer counts as owed (see holdsOurWantBlocks)
      const asked = this.asked.get(peerKey)?.get(key)
      if (asked !== undefined) {
        asked.answered = true
        if (presence.type === BlockPresenceType.Have && asked.type === WantType.WantHave) {
          asked.saidHave = true
          // the block came from elsewhere first and a cancel waits in the batch: the Have made it moot
          const pending = this.outgoing.get(peerKey)?.entries
          if (pending?.get(key)?.cancel === true) pending.delete(key)
        }
      }
      for (const session of this.wanted.get(key) ?? []) {
        session.receivePresence(key, peerKey, presence.type === BlockPresenceType.Have)
      }
    }
  }

  private countEntries (message: Message): void {
    const c = this.entriesReceived
    for (const e of message.wantlist?.entries ?? []) {
      if (e.cancel === true) c.cancels++
      else if (e.wantType === WantType.WantHave) c.wantHaves++
      else c.wantBlocks++
    }
    for (const p of message.blockPresences) {
      if (p.type === BlockPresenceType.Have) c.haves++
      else c.dontHaves++
    }
    c.blocks += message.payload.length
  }

  /**
   * Decides what a received block is: one we want (verified against the CID we asked under,
   * returned for storing), a harmless duplicate, or bytes nobody asked this peer for (dropped; the
   * peer is banned at once if it owed us blocks, else after too many).
   */
  private checkBlock (peer: PeerId, peerKey: string, block: Block): Accepted | undefined {
    const data = block.data
    this.engine.ledger(peerKey).bytesReceived += data.byteLength
    // hashed once here (no CID built): core remembers the digest for verifyBlock and the store
    const key = payloadKey(block)
    let wantedCid: CID | undefined
    if (key !== undefined && !this.storing.has(key)) {
      for (const s of this.wanted.get(key) ?? []) { wantedCid = s.wantedCid(key); if (wantedCid !== undefined) break }
    }
    if (key !== undefined && wantedCid !== undefined) {
      try {
        // against the CID we asked under (codec and all), not the one the sender's prefix claims
        verifyBlock(wantedCid, data)
      } catch (err) {
        this.ban(peer, `bad block: ${(err as Error).message}`)
        return undefined
      }
      this.storing.add(key)
      return { key, cid: wantedCid, data }
    }
    const asked = key === undefined ? undefined : this.asked.get(peerKey)?.get(key)
    if (asked !== undefined || (key !== undefined && this.storing.has(key))) {
      // asked of several peers, or arrived after we cancelled: harmless
      this.duplicateBlocks++
      return undefined
    }
    const strikes = (this.unsolicited.get(peerKey) ?? 0) + 1
    this.unsolicited.set(peerKey, strikes)
    if (this.holdsOurWantBlocks(peerKey)) {
      // it owes us blocks and sent bytes that hash to none of them: a corrupt or lying provider
      this.ban(peer, 'sent a block that matches none of the blocks asked for')
    } else if (strikes > (this.init.maxUnsolicitedBlocks ?? DEFAULT_MAX_UNSOLICITED_BLOCKS)) {
      this.ban(peer, 'too many unsolicited blocks')
    } else {
      log('dropped unsolicited block from %s', peerKey)
    }
    return undefined
  }

  /**
   * Tells the sessions waiting for these blocks that they are verified and being stored: their
   * wants leave the peer's window (see BitswapSession.blockVerified); the blocks come later.
   */
  private verified (peerKey: string, accepted: Accepted[]): void {
    const asked = this.asked.get(peerKey)
    const now = Date.now()
    for (const { key, data } of accepted) {
      // the peer no longer owes it (late copies from others are excused for a while)
      const answered = asked?.get(key)
      if (answered !== undefined) answered.cancelledAt = now
      const sessions = this.wanted.get(key)
      if (sessions === undefined) continue
      for (const s of [...sessions]) s.blockVerified(key, peerKey, data.byteLength)
    }
  }

  /** Hands verified, durably stored blocks to the sessions waiting for them. */
  private deliver (peerKey: string, accepted: Accepted[]): void {
    const ledger = this.engine.ledger(peerKey)
    for (const { key, data } of accepted) {
      ledger.blocksReceived++
      const sessions = this.wanted.get(key)
      if (sessions === undefined) continue
      for (const s of [...sessions]) s.receiveBlock(key, data, peerKey)
    }
  }

  /** Writes verified blocks to the blockstore (together: a store with group commit syncs them once), then hands them to the sessions and to peers waiting on us. */
  private async storeAndDeliver (peerKey: string, accepted: Accepted[]): Promise<void> {
    const stored = await Promise.all(accepted.map(async ({ key, cid, data }) => {
      try {
        await this.blockstore.put(cid, data)
        return true
      } catch (err) {
        // not handed over: the want is asked again (see blockNotStored)
        log.error('storing %s from %s failed: %e', cid, peerKey, err)
        return false
      } finally {
        this.storing.delete(key)
      }
    }))
    const done = accepted.filter((_, i) => stored[i])
    for (const [i, { key }] of accepted.entries()) {
      if (stored[i]) continue
      for (const s of [...this.wanted.get(key) ?? []]) s.blockNotStored(key, peerKey)
    }
    this.deliver(peerKey, done)
    this.engine.notifyNewBlocks(done.map(a => a.cid))
  }

  private holdsOurWantBlocks (peerKey: string): boolean {
    const asked = this.asked.get(peerKey)
    if (asked === undefined) return false
    this.pruneAsked(asked)
    for (const a of asked.values()) if (a.cancelledAt === undefined && a.answered !== true && a.type === WantType.WantBlock) return true
    return false
  }

  /** Forgets wants cancelled or answered longer ago than the late-block window. */
  private pruneAsked (asked: Map<string, Asked>): void {
    const now = Date.now()
    for (const [key, a] of asked) {
      if (a.cancelledAt !== undefined && now - a.cancelledAt > RECENT_WANT_WINDOW_MS) asked.delete(key)
    }
  }

  private peerGone (peerKey: string, reason: string): void {
    this.engine.peerDisconnected(peerKey)
    if (this.unsolicited.size > 1024) this.unsolicited.delete(peerKey)
    if (this.violations.size > 1024) this.violations.delete(peerKey)
    this.asked.delete(peerKey)
    this.peerIds.delete(peerKey)
    this.askedPruneAt.delete(peerKey)
    this.outgoing.delete(peerKey)
    for (const session of this.sessions) session.peerGone(peerKey, reason)
  }

  private peerIdOf (peerKey: string): PeerId | undefined {
    // the engine calls this for every message it sends: a peer that sent us wants is looked up
    // by id (getConnections() builds the list of every connection each time)
    const known = this.peerIds.get(peerKey)
    if (known !== undefined) return this.libp2p.getConnections(known).length > 0 ? known : undefined
    for (const conn of this.libp2p.getConnections()) {
      if (conn.remotePeer.toString() === peerKey) return conn.remotePeer
    }
    return undefined
  }
}
