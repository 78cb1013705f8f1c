/**
 * What we know about one remote peer: the wants it has sent us (bounded), and counters for
 * everything exchanged with it. The serving engine reads and updates it.
 */
import { WantType } from './wire.js'
import type { CID } from 'multiformats/cid'

export interface PeerWant {
  cid: CID
  priority: number
  wantType: WantType
  sendDontHave: boolean
  /** `pending`: to be looked at by the engine; `waiting`: we lack the block, answer when it arrives. */
  state: 'pending' | 'waiting'
  /** Arrival order, so equal priorities are served first come first served. */
  seq: number
}

export interface LedgerStats {
  peer: string
  bytesSent: number
  bytesReceived: number
  blocksSent: number
  blocksReceived: number
  wantsReceived: number
  /** Wants ignored because the peer's wantlist was full. */
  wantsDropped: number
  wantlistSize: number
}

let seq = 0

export class Ledger {
  readonly peer: string
  readonly wants = new Map<string, PeerWant>()
  bytesSent = 0
  bytesReceived = 0
  blocksSent = 0
  blocksReceived = 0
  wantsReceived = 0
  wantsDropped = 0
  /** Bytes loaded for this peer and not yet accepted by its stream. */
  bytesInFlight = 0
  /** A turn for this peer is being prepared. */
  busy = false
  /** Blocks read for this peer that did not fit the last message (sent first next turn). */
  readonly ready = new Map<string, { prefix: Uint8Array, data: Uint8Array }>()
  /** Running average of the blocks this peer asks for, to size reads to one message. */
  averageBlockSize = 256 * 1024

  constructor (peer: string) {
    this.peer = peer
  }

  /** Adds or updates a want; returns false when the wantlist is full and the want was dropped. */
  want (key: string, cid: CID, priority: number, wantType: WantType, sendDontHave: boolean, maxSize: number): boolean {
    this.wantsReceived++
    const existing = this.wants.get(key)
    if (existing !== undefined) {
      // a want-block upgrades a want-have; a repeated want is looked at again
      existing.priority = priority
      if (existing.wantType === WantType.WantHave || wantType === WantType.WantBlock) existing.wantType = wantType
      existing.sendDontHave = sendDontHave
      existing.state = 'pending'
      return true
    }
    if (this.wants.size >= maxSize && !(wantType === WantType.WantBlock && this.evictWaitingHave())) {
      this.wantsDropped++
      return false
    }
    this.wants.set(key, { cid, priority, wantType, sendDontHave, state: 'pending', seq: seq++ })
    return true
  }

  /**
   * Makes room for a want-block in a full wantlist by dropping the oldest want-have we are waiting
   * on (we lack its block): losing it costs the peer a Have it may never need, while dropping its
   * want-block would leave it waiting for a block that never comes.
   */
  private evictWaitingHave (): boolean {
    for (const [key, w] of this.wants) {
      if (w.state === 'waiting' && w.wantType === WantType.WantHave) {
        this.wants.delete(key)
        return true
      }
    }
    return false
  }

  /** The pending wants, highest priority first, then oldest first. */
  pending (): Array<[string, PeerWant]> {
    const out: Array<[string, PeerWant]> = []
    for (const entry of this.wants) if (entry[1].state === 'pending') out.push(entry)
    return out.sort((a, b) => (b[1].priority - a[1].priority) || (a[1].seq - b[1].seq))
  }

  hasPending (): boolean {
    for (const w of this.wants.values()) if (w.state === 'pending') return true
    return false
  }

  stats (): LedgerStats {
    return {
      peer: this.peer,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      blocksSent: this.blocksSent,
      blocksReceived: this.blocksReceived,
      wantsReceived: this.wantsReceived,
      wantsDropped: this.wantsDropped,
      wantlistSize: this.wants.size + this.ready.size
    }
  }
}
