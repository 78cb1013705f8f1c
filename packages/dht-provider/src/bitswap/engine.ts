/**
 * The serving side: keeps a ledger per peer, answers wants from the blockstore and takes turns
 * between peers (round robin, a few at a time) so one greedy peer cannot starve the others.
 * Each turn sends one message (at most the per-peer bytes-in-flight budget and the 2 MiB cap) and
 * waits for the peer's stream to accept it before that peer gets another turn. Wants for blocks
 * we lack wait in the ledger until `notifyNewBlocks` says the block arrived; a want-block answered
 * with DontHave (send-dont-have) waits as a want-have, so the arrival is announced with Have
 * rather than answered with bytes the asker has probably fetched elsewhere meanwhile.
 */
import { logger } from '@libp2p/logger'
import { CoreErrorCode } from '@swarmpack/core'
import { DEFAULT_MAX_BYTES_IN_FLIGHT_PER_PEER, DEFAULT_MAX_CONCURRENT_SENDS, DEFAULT_MAX_SIZE_REPLACE_HAVE_WITH_BLOCK, DEFAULT_MAX_WANTLIST_SIZE, MAX_MESSAGE_SIZE } from './constants.js'
import { Ledger } from './ledger.js'
import type { PeerWant } from './ledger.js'
import { BlockPresenceType, WantType, cidPrefix, decodeCid, multihashKey } from './wire.js'
import type { Block, BlockPresence, OutgoingContent, Wantlist } from './wire.js'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

const log = logger('swarmpack:bitswap:engine')

/** Ledgers kept for stats after their peers left, before departed peers' ledgers are dropped. */
const MAX_KEPT_LEDGERS = 1024

/** Blocks read from the store at once for one peer's turn. */
const READ_CONCURRENCY = 16

/**
 * Haves for blocks that just arrived are gathered this long before a peer gets its turn: in a
 * swarm, every block a downloader receives is announced to the several peers that asked about it,
 * and a message per block per peer costs more CPU than the announcements are worth. Waiting
 * want-blocks (sent without send-dont-have) are answered at once.
 */
const HAVE_BATCH_MS = 300

export { multihashKey }

/**
 * What the engine reads blocks from: an interface-blockstore, optionally with `getBytes` (the
 * FsBlockstore's one-call read of a whole block, trusted as stored: no re-hash on the way out).
 */
export type ServingBlockstore = Pick<Blockstore, 'has' | 'get'> & {
  getBytes?: (cid: CID) => Promise<Uint8Array>
}

export interface EngineOptions {
  blockstore: ServingBlockstore
  /** Sends content to a peer; resolves when its stream accepted it. */
  send(peer: string, content: OutgoingContent): Promise<void>
  /** false: consume mode, never send blocks or Have (DontHave is still sent when asked). */
  serve: boolean
  maxWantlistSize?: number
  maxBytesInFlightPerPeer?: number
  maxConcurrentSends?: number
  maxSizeReplaceHaveWithBlock?: number
}

/** Reads a whole block from an interface-blockstore v7 store (get() yields chunks), or with `getBytes` when it has one. */
export async function readBlock (blockstore: Pick<ServingBlockstore, 'get' | 'getBytes'>, cid: CID): Promise<Uint8Array> {
  if (blockstore.getBytes !== undefined) return await blockstore.getBytes(cid)
  const chunks: Uint8Array[] = []
  let length = 0
  for await (const chunk of blockstore.get(cid)) {
    chunks.push(chunk)
    length += chunk.byteLength
  }
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(length)
  let offset = 0
  for (const c of chunks) { out.set(c, offset); offset += c.byteLength }
  return out
}

export class Engine {
  private readonly opts: Required<Omit<EngineOptions, 'blockstore' | 'send'>> & Pick<EngineOptions, 'blockstore' | 'send'>
  readonly ledgers = new Map<string, Ledger>()
  /** Peers with pending wants, in turn order. */
  private readonly turns: string[] = []
  private readonly queued = new Set<string>()
  private active = 0
  private running = true
  /** Peers with Haves to announce at the next HAVE_BATCH_MS tick. */
  private readonly haveWake = new Set<string>()
  private haveTimer?: ReturnType<typeof setTimeout>

  constructor (options: EngineOptions) {
    this.opts = {
      blockstore: options.blockstore,
      send: options.send,
      serve: options.serve,
      maxWantlistSize: options.maxWantlistSize ?? DEFAULT_MAX_WANTLIST_SIZE,
      maxBytesInFlightPerPeer: options.maxBytesInFlightPerPeer ?? DEFAULT_MAX_BYTES_IN_FLIGHT_PER_PEER,
      maxConcurrentSends: options.maxConcurrentSends ?? DEFAULT_MAX_CONCURRENT_SENDS,
      maxSizeReplaceHaveWithBlock: options.maxSizeReplaceHaveWithBlock ?? DEFAULT_MAX_SIZE_REPLACE_HAVE_WITH_BLOCK
    }
  }

  ledger (peer: string): Ledger {
    let l = this.ledgers.get(peer)
    if (l === undefined) {
      l = new Ledger(peer)
      this.ledgers.set(peer, l)
    }
    return l
  }

  stop (): void {
    this.running = false
    clearTimeout(this.haveTimer)
    this.haveWake.clear()
    this.turns.length = 0
    this.queued.clear()
  }

  /** Applies a received wantlist to the peer's ledger and schedules the peer. */
  receiveWantlist (peer: string, wantlist: Wantlist): void {
    const ledger = this.ledger(peer)
    if (wantlist.full === true) {
      ledger.wants.clear()
      ledger.ready.clear()
    }
    const dontHave: BlockPresence[] = []
    for (const entry of wantlist.entries) {
      const cid = decodeCid(entry.block)
      if (cid === undefined) continue
      const key = multihashKey(cid)
      if (entry.cancel === true) {
        ledger.wants.delete(key)
        ledger.ready.delete(key)
        continue
      }
      const wantType = entry.wantType ?? WantType.WantBlock
      const sendDontHave = entry.sendDontHave === true
      if (!this.opts.serve) {
        // consume mode keeps no wants: say DontHave when asked to, so the peer moves on
        if (sendDontHave) dontHave.push({ cid: entry.block, type: BlockPresenceType.DontHave })
        continue
      }
      ledger.want(key, cid, entry.priority, wantType, sendDontHave, this.opts.maxWantlistSize)
    }
    if (dontHave.length > 0) {
      this.opts.send(peer, { presences: dontHave }).catch(err => { log('DontHave to %s failed: %s', peer, err.message) })
    }
    this.enqueue(peer)
  }

  /** Blocks just stored locally: wake the wants waiting for them. */
  notifyNewBlocks (cids: Iterable<CID>): void {
    if (!this.opts.serve) return
    const keys = new Set<string>()
    for (const cid of cids) keys.add(multihashKey(cid))
    if (keys.size === 0) return
    for (const [peer, ledger] of this.ledgers) {
      let woke = false
      let blockWoke = false
      for (const key of keys) {
        const w = ledger.wants.get(key)
        if (w !== undefined && w.state === 'waiting') {
          w.state = 'pending'
          woke = true
          if (w.wantType === WantType.WantBlock) blockWoke = true
        }
      }
      if (blockWoke) this.enqueue(peer)
      else if (woke) this.haveWake.add(peer)
    }
    if (this.haveWake.size > 0 && this.haveTimer === undefined) {
      this.haveTimer = setTimeout(() => {
        this.haveTimer = undefined
        const peers = [...this.haveWake]
        this.haveWake.clear()
        for (const peer of peers) this.enqueue(peer)
      }, HAVE_BATCH_MS)
      this.haveTimer.unref?.()
    }
  }

  peerDisconnected (peer: string): void {
    const ledger = this.ledgers.get(peer)
    if (ledger === undefined) return
    // the remote's wantlist ends with the connection; counters stay for stats, unless there are
    // so many ledgers that keeping those of departed peers would grow without bound
    ledger.wants.clear()
    ledger.ready.clear()
    if (this.ledgers.size > MAX_KEPT_LEDGERS && !ledger.busy && ledger.bytesInFlight === 0) this.ledgers.delete(peer)
  }

  private enqueue (peer: string): void {
    if (!this.running || this.queued.has(peer)) return
    const ledger = this.ledgers.get(peer)
    if (ledger === undefined || (!ledger.hasPending() && ledger.ready.size === 0)) return
    // its stream has enough to chew on: it gets a turn when some of that drains
    if (ledger.bytesInFlight >= this.opts.maxBytesInFlightPerPeer) return
    this.queued.add(peer)
    this.turns.push(peer)
    this.pump()
  }

  private pump (): void {
    while (this.running && this.active < this.opts.maxConcurrentSends && this.turns.length > 0) {
      const peer = this.turns.shift() as string
      this.queued.delete(peer)
      const ledger = this.ledgers.get(peer)
      if (ledger === undefined || ledger.busy) continue
      this.active++
      ledger.busy = true
      this.turn(peer, ledger)
        .catch(err => { log('serving %s failed: %s', peer, err.message) })
        .finally(() => {
          ledger.busy = false
          this.active--
          // back of the line if it still wants more
          this.enqueue(peer)
          this.pump()
        })
    }
  }

  /**
   * One turn for a peer: answer its pending wants (highest priority, then oldest, first) with up
   * to one message of blocks and presences, and hand the message to its stream. Blocks are read a
   * few at a time, as many as are likely to fit; one read that does not fit waits in the ledger
   * for the next turn.
   */
  private async turn (peer: string, ledger: Ledger): Promise<void> {
    const budget = MAX_MESSAGE_SIZE - 4096
    const blocks: Block[] = []
    const presences: BlockPresence[] = []
    let bytes = 0
    let full = false
    for (const [key, block] of ledger.ready) {
      if (bytes > 0 && bytes + block.data.byteLength > budget) { full = true; break }
      ledger.ready.delete(key)
      blocks.push(block)
      bytes += block.data.byteLength
    }
    const pending = ledger.pending()
    let next = 0
    while (next < pending.length && !full && bytes < budget && this.running) {
      const room = Math.floor((budget - bytes) / Math.max(1, ledger.averageBlockSize))
      const batch = pending.slice(next, next + Math.min(READ_CONCURRENCY, Math.max(1, room)))
      next += batch.length
      const answers = await Promise.all(batch.map(async ([, want]) => this.answer(want)))
      for (let i = 0; i < batch.length; i++) {
        const [key, want] = batch[i]
        const answer = answers[i]
        if (ledger.wants.get(key) !== want) continue // cancelled (or replaced) meanwhile
        if (answer === 'missing') {
          if (want.sendDontHave) {
            presences.push({ cid: want.cid.bytes, type: BlockPresenceType.DontHave })
            // The asker has been told we lack it and asks elsewhere: when the block arrives we say
            // Have (so it learns who holds what), but never push bytes it may already have.
            want.wantType = WantType.WantHave
          }
          want.state = 'waiting'
          continue
        }
        // the want is answered; the peer may ask again if the block gets lost
        ledger.wants.delete(key)
        if (answer === 'have') {
          presences.push({ cid: want.cid.bytes, type: BlockPresenceType.Have })
          continue
        }
        const block = { prefix: cidPrefix(want.cid), data: answer }
        ledger.averageBlockSize = Math.round(ledger.averageBlockSize * 0.8 + answer.byteLength * 0.2)
        if (bytes > 0 && bytes + answer.byteLength > budget) {
          ledger.ready.set(key, block)
          full = true
        } else {
          blocks.push(block)
          bytes += answer.byteLength
        }
      }
    }
    if (blocks.length === 0 && presences.length === 0) return
    // not awaited: the next turn is prepared while this message drains, so the stream never idles
    // (within the bytes-in-flight budget, checked in enqueue)
    ledger.bytesInFlight += bytes
    this.opts.send(peer, { blocks, presences })
      .then(() => {
        ledger.bytesSent += bytes
        ledger.blocksSent += blocks.length
      }, (err: Error) => {
        log('sending to %s failed: %s', peer, err.message)
      })
      .finally(() => {
        ledger.bytesInFlight -= bytes
        this.enqueue(peer)
      })
  }

  /** What to send for one want: the block, Have, or 'missing' when we lack it. */
  private async answer (want: PeerWant): Promise<Uint8Array | 'have' | 'missing'> {
    const store = this.opts.blockstore
    try {
      if (want.wantType === WantType.WantBlock && store.getBytes !== undefined) {
        // one call instead of has + get: a missing block is the rare case (it throws NotFound)
        return await store.getBytes(want.cid)
      }
      if (!(await store.has(want.cid))) return 'missing'
      if (want.wantType === WantType.WantHave) {
        // a small block goes in place of the Have, saving a round trip
        if (this.opts.maxSizeReplaceHaveWithBlock <= 0) return 'have'
        const data = await readBlock(store, want.cid)
        return data.byteLength <= this.opts.maxSizeReplaceHaveWithBlock ? data : 'have'
      }
      return await readBlock(store, want.cid)
    } catch (err) {
      if ((err as { code?: string }).code !== CoreErrorCode.NOT_FOUND) log('reading %s failed: %s', want.cid, (err as Error).message)
      return 'missing'
    }
  }

}
