/**
 * The want-block window of one peer in a session that has several peers to choose from: a
 * delay-based window, as in delay-based congestion control. Every block that came back within the
 * target latency widens it by one, every slower one narrows it by one, between a floor and the
 * session's cap. A congested peer (a seed serving twenty downloaders) ends up holding a few wants,
 * and the rest go to peers whose uplinks have room.
 */
import { SESSION_INITIAL_PEER_WINDOW, SESSION_MIN_PEER_WINDOW, SESSION_TARGET_BLOCK_LATENCY_MS } from './constants.js'

export class PeerWindow {
  private size = SESSION_INITIAL_PEER_WINDOW

  constructor (private readonly targetMs = SESSION_TARGET_BLOCK_LATENCY_MS) {}

  /** Want-blocks the peer may hold, never over `cap` (the session's per-peer limit). */
  limit (cap: number): number {
    return Math.max(1, Math.min(cap, this.size))
  }

  /** A block asked of this peer `latencyMs` ago arrived. */
  delivered (latencyMs: number, cap: number): void {
    if (latencyMs <= this.targetMs) this.size = Math.min(cap, this.size + 1)
    else this.size = Math.max(SESSION_MIN_PEER_WINDOW, this.size - 1)
  }
}
