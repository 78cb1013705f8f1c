/**
 * Peers we refuse to exchange blocks with, e.g. after they sent a block that does not match its
 * CID. Bans expire (a peer id can be honest again after a restart with fixed storage). Create one
 * before the libp2p node when its connection gater should consult it too, and pass it to Bitswap.
 */
import type { PeerId } from '@libp2p/interface'

export interface BanEntry {
  peer: string
  reason: string
  /** Epoch milliseconds when the ban lapses. */
  until: number
}

export const DEFAULT_BAN_MS = 60 * 60 * 1000

export class BanList {
  private readonly entries = new Map<string, BanEntry>()

  ban (peer: PeerId | string, reason: string, durationMs: number = DEFAULT_BAN_MS): void {
    const key = peer.toString()
    this.entries.set(key, { peer: key, reason, until: Date.now() + durationMs })
  }

  unban (peer: PeerId | string): void {
    this.entries.delete(peer.toString())
  }

  isBanned (peer: PeerId | string): boolean {
    const key = peer.toString()
    const entry = this.entries.get(key)
    if (entry === undefined) return false
    if (entry.until <= Date.now()) {
      this.entries.delete(key)
      return false
    }
    return true
  }

  list (): BanEntry[] {
    return [...this.entries.values()].filter(e => this.isBanned(e.peer))
  }
}
