/**
 * Provider lookups repeated while a package is being fetched. Peers that share announce a package
 * as soon as they hold its root block (SwarmNode), so downloaders of the same package find each
 * other during the transfer and trade blocks, instead of all asking only the providers the first
 * lookup found (BitTorrent peers re-ask their tracker for the same reason). A repeat is skipped
 * while the fetch knows enough peers (the lookup says so), and tried again one wait later: in a
 * small swarm every lookup costs every peer work, for peers the fetch has already.
 */
import { logger } from '@libp2p/logger'
import type { CID } from '@swarmpack/core'

const log = logger('swarmpack:dht-provider:rediscovery')

export interface RediscoveryOptions {
  /** First repeat after this many ms (default 2 s); each later one waits twice as long. */
  firstMs?: number
  /** Longest wait between repeats (default 30 s). */
  maxMs?: number
}

interface Active {
  root: CID
  /** Calls fetching from this root right now. */
  users: number
  /** When the last call ended (0 while one runs). */
  idleSince: number
  waitMs: number
  timer?: ReturnType<typeof setTimeout>
  lookup?: AbortController
}

export class Rediscovery {
  private readonly active = new Map<string, Active>()
  private readonly firstMs: number
  private readonly maxMs: number
  private stopped = false

  /**
   * `lookup` runs one provider lookup for the root and adds what it finds to the root's session,
   * or resolves false at once when the session has enough peers (no lookup made);
   * `onStart` is called when a root starts being fetched (not again while it is).
   */
  constructor (
    private readonly lookup: (root: CID, signal: AbortSignal) => Promise<boolean>,
    options: RediscoveryOptions = {},
    private readonly onStart?: (root: CID) => void
  ) {
    this.firstMs = options.firstMs ?? 2_000
    this.maxMs = Math.max(this.firstMs, options.maxMs ?? 30_000)
  }

  /** Marks a fetch from `root` as running; call the returned function when it ends. */
  begin (root: CID): () => void {
    const key = root.toString()
    let a = this.active.get(key)
    if (a === undefined) {
      a = { root, users: 0, idleSince: 0, waitMs: this.firstMs }
      this.active.set(key, a)
      if (!this.stopped) {
        this.onStart?.(root)
        this.schedule(key, a)
      }
    }
    a.users++
    a.idleSince = 0
    const entry = a
    let ended = false
    return () => {
      if (ended) return
      ended = true
      entry.users--
      if (entry.users === 0) entry.idleSince = Date.now()
    }
  }

  stop (): void {
    this.stopped = true
    for (const [key, a] of this.active) this.forget(key, a)
  }

  private schedule (key: string, a: Active): void {
    a.timer = setTimeout(() => { void this.tick(key, a) }, a.waitMs)
    a.timer.unref?.()
  }

  private async tick (key: string, a: Active): Promise<void> {
    a.timer = undefined
    // calls from a resolver come one block at a time: a root counts as idle only once no call
    // has run for a whole wait
    if (this.stopped || (a.users === 0 && Date.now() - a.idleSince >= a.waitMs)) {
      this.forget(key, a)
      return
    }
    if (a.users === 0) {
      this.schedule(key, a)
      return
    }
    a.lookup = new AbortController()
    let looked = true
    try {
      looked = await this.lookup(a.root, a.lookup.signal)
    } catch (err) {
      log('lookup of %c failed: %s', a.root, (err as Error).message)
    }
    a.lookup = undefined
    if (this.active.get(key) !== a || this.stopped) return
    // skipped: check again as soon (peers may leave); looked: back off
    if (looked) a.waitMs = Math.min(this.maxMs, a.waitMs * 2)
    this.schedule(key, a)
  }

  private forget (key: string, a: Active): void {
    if (a.timer !== undefined) clearTimeout(a.timer)
    a.lookup?.abort()
    if (this.active.get(key) === a) this.active.delete(key)
  }
}
