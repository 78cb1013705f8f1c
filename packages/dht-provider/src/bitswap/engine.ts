/**
 * The serving side: keeps a ledger per peer, answers wants from the blockstore and takes turns
 * between peers (round robin, a few at a time) so one greedy peer cannot starve the others.
 * Each turn sends one message (at most the per-peer bytes-in-flight budget and the 2 MiB cap) and
 * waits for the peer's stream to accept it before that peer gets another turn. Wants for blocks
 * we lack wait in the ledger until `notifyNewBlocks` says the block arrived.
 */
import { logger } from '@libp2p/logger'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { DEFAULT_MAX_BYTES_IN_FLIGHT_PER_PEER, DEFAULT_MAX_CONCURRENT_SENDS, DEFAULT_MAX_SIZE_REPLACE_HAVE_WITH_BLOCK, DEFAULT_MAX_WANTLIST_SIZE, MAX_MESSAGE_SIZE } from './constants.js'
import { Ledger } from './ledger.js'
import { BlockPresenceType, WantType, cidPrefix, decodeCid } from './wire.js'
import type { Block, BlockPresence, OutgoingContent, Wantlist } from './wire.js'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

const log = logger('swarmpack:bitswap:engine')

/** Ledger and want keys: the multihash, so a CIDv0 and a CIDv1 of the same bytes meet. */
export function multihashKey (cid: CID): string {
  return uint8ArrayToString(cid.multihash.bytes, 'base64')
}

export interface EngineOptions {
  blockstore: Pick<Blockstore, 'has' | 'get'>
  /** Sends content to a peer; resolves when its stream accepted it. */
  send(peer: string, content: OutgoingContent): Promise<void>
  /** false: consume mode, never send blocks or Have (DontHave is still sent when asked). */
  serve: boolean
  maxWantlistSize?: number
  maxBytesInFlightPerPeer?: number
  maxConcurrentSends?: number
  maxSizeReplaceHaveWithBlock?: number
}

/** Reads a whole block from an interface-blockstore v7 store (get() yields chunks). */
export async function readBlock (blockstore: Pick<Blockstore, 'get'>, cid: CID): Promise<Uint8Array> {
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
  private readonly ready: string[] = []
  private readonly queued = new Set<string>()
  private active = 0
  private running = true

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
    this.ready.length = 0
    this.queued.clear()
  }

  /** Applies a received wantlist to the peer's ledger and schedules the peer. */
  receiveWantlist (peer: string, wantlist: Wantlist): void {
    const ledger = this.ledger(peer)
    if (wantlist.full === true) {
      ledger.wants.clear()
    }
    const dontHave: BlockPresence[] = []
    for (const entry of wantlist.entries) {
      const cid = decodeCid(entry.block)
      if (cid === undefined) continue
      const key = multihashKey(cid)
      if (entry.cancel === true) {
        ledger.wants.delete(key)
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
      for (const key of keys) {
        const w = ledger.wants.get(key)
        if (w !== undefined && w.state === 'waiting') { w.state = 'pending'; woke = true }
      }
      if (woke) this.enqueue(peer)
    }
  }

  peerDisconnected (peer: string): void {
    const ledger = this.ledgers.get(peer)
    // the remote's wantlist ends with the connection; counters stay for stats
    ledger?.wants.clear()
  }

  private enqueue (peer: string): void {
    if (!this.running || this.queued.has(peer)) return
    const ledger = this.ledgers.get(peer)
    if (ledger === undefined || !ledger.hasPending()) return
    // its stream has enough to chew on: it gets a turn when some of that drains
    if (ledger.bytesInFlight >= this.opts.maxBytesInFlightPerPeer) return
    this.queued.add(peer)
    this.ready.push(peer)
    this.pump()
  }

  private pump (): void {
    while (this.running && this.active < this.opts.maxConcurrentSends && this.ready.length > 0) {
      const peer = this.ready.shift() as string
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

  /** One turn for a peer: answer its pending wants up to the per-turn byte budget, send, wait. */
  private async turn (peer: string, ledger: Ledger): Promise<void> {
    const budget = Math.min(Math.max(1, this.opts.maxBytesInFlightPerPeer - ledger.bytesInFlight), MAX_MESSAGE_SIZE - 1024)
    const blocks: Block[] = []
    const presences: BlockPresence[] = []
    let bytes = 0
    for (const [key, want] of ledger.pending()) {
      if (!this.running) return
      const have = await this.opts.blockstore.has(want.cid)
      if (!ledger.wants.has(key)) continue // cancelled meanwhile
      if (!have) {
        if (want.sendDontHave) presences.push({ cid: want.cid.bytes, type: BlockPresenceType.DontHave })
        want.state = 'waiting'
        continue
      }
      if (want.wantType === WantType.WantHave) {
        // small blocks go in place of the Have, saving a round trip
        let data: Uint8Array | undefined
        if (this.opts.maxSizeReplaceHaveWithBlock > 0) {
          data = await readBlock(this.opts.blockstore, want.cid).catch(() => undefined)
          if (data !== undefined && data.byteLength > this.opts.maxSizeReplaceHaveWithBlock) data = undefined
        }
        if (data !== undefined) {
          blocks.push({ prefix: cidPrefix(want.cid), data })
          bytes += data.byteLength
        } else {
          presences.push({ cid: want.cid.bytes, type: BlockPresenceType.Have })
        }
        ledger.wants.delete(key)
        continue
      }
      if (bytes > 0 && bytes + 1024 * 1024 > budget) break // a max-size block may not fit: next turn
      let data: Uint8Array
      try {
        data = await readBlock(this.opts.blockstore, want.cid)
      } catch {
        if (want.sendDontHave) presences.push({ cid: want.cid.bytes, type: BlockPresenceType.DontHave })
        want.state = 'waiting'
        continue
      }
      if (!ledger.wants.has(key)) continue
      blocks.push({ prefix: cidPrefix(want.cid), data })
      bytes += data.byteLength
      // the want is answered; the peer may ask again if the block gets lost
      ledger.wants.delete(key)
      if (bytes >= budget) break
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
}
