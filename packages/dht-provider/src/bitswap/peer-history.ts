/**
 * What one peer has answered a session so far, so the session can skip the want-have round trip
 * when the answer is predictable. A peer that confirmed every block asked of it (said Have, or
 * sent the block) at least COMPLETE_AFTER_CONFIRMATIONS times, or that announced the package root
 * in a provider record, and never said DontHave, is taken to hold the whole DAG. A provider record
 * is a guess, not a promise: seeds announce a package they hold, but a downloader announces it as
 * soon as it holds the root block (sharing.ts), so it may lack the rest. Its first DontHave ends
 * the trust for the rest of the session: a peer that lacked one block may lack others.
 */

/** Confirmations (Haves or blocks, no DontHave) after which a peer is taken to hold everything. */
export const COMPLETE_AFTER_CONFIRMATIONS = 4

export class PeerHistory {
  private confirmed = 0
  private refusedAny = false
  private announcedRoot = false

  /** It said Have to a block we asked about, or sent a block we asked for. */
  confirm (): void {
    this.confirmed++
  }

  /** It said DontHave. Returns true the first time (the session stops trusting it then). */
  refuse (): boolean {
    if (this.refusedAny) return false
    this.refusedAny = true
    return true
  }

  /** Its provider record for the package root was found: taken to hold the whole package until it says DontHave. */
  announced (): void {
    this.announcedRoot = true
  }

  /** It has said DontHave at least once in this session. */
  get refused (): boolean {
    return this.refusedAny
  }

  /** Taken to hold every block of the session's DAG. */
  get complete (): boolean {
    return !this.refusedAny && (this.announcedRoot || this.confirmed >= COMPLETE_AFTER_CONFIRMATIONS)
  }
}
