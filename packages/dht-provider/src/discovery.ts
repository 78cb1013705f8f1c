/**
 * Discovery through the Kademlia DHT: find who provides a CID (with a timeout), and announce
 * the package roots this node holds, re-announcing them periodically and withdrawing those it
 * evicted or unpinned.
 */
import { logger } from '@libp2p/logger'
import { SwarmpackError, throwIfAborted } from '@swarmpack/core'
import { toString } from 'uint8arrays/to-string'
import { DhtErrorCode } from './errors.js'
import type { AbortOptions, PeerId, PeerInfo } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { CID } from 'multiformats/cid'

const log = logger('swarmpack:discovery')

export interface FindProvidersOptions extends AbortOptions {
  /** Give up after this many ms. Default 15 s. */
  timeout?: number
  /** Stop once this many providers are known. Default 20. */
  limit?: number
  /**
   * After the first provider is found, wait at most this long for more before returning, so
   * a session starts quickly yet spreads over several peers. Default 400 ms.
   */
  settle?: number
  /** Leave this peer out (ourselves). */
  self?: PeerId
}

/**
 * Providers of `cid` from the DHT, deduplicated. Rejects with ERR_DHT_NO_PROVIDERS when none
 * is found before the timeout or the end of the query.
 */
export async function findProviders (dht: KadDHT, cid: CID, options: FindProvidersOptions = {}): Promise<PeerInfo[]> {
  throwIfAborted(options.signal)
  const limit = options.limit ?? 20
  const controller = new AbortController()
  const abort = (): void => { controller.abort() }
  options.signal?.addEventListener('abort', abort, { once: true })
  const timer = setTimeout(abort, options.timeout ?? 15_000)
  let settleTimer: ReturnType<typeof setTimeout> | undefined
  const found = new Map<string, PeerInfo>()
  let error: unknown
  try {
    for await (const event of dht.findProviders(cid, { signal: controller.signal })) {
      if (event.name !== 'PROVIDER') continue
      for (const p of event.providers) {
        if (options.self?.equals(p.id) === true) continue
        const key = p.id.toString()
        const known = found.get(key)
        found.set(key, known === undefined ? p : { id: p.id, multiaddrs: [...known.multiaddrs, ...p.multiaddrs] })
      }
      if (found.size >= limit) break
      if (found.size > 0 && settleTimer === undefined) settleTimer = setTimeout(abort, options.settle ?? 400)
    }
  } catch (err) {
    error = err
  } finally {
    clearTimeout(timer)
    clearTimeout(settleTimer)
    options.signal?.removeEventListener('abort', abort)
  }
  throwIfAborted(options.signal)
  if (found.size === 0) {
    throw new SwarmpackError(DhtErrorCode.NO_PROVIDERS, `no providers found for ${cid.toString()}`, {
      ...(error !== undefined ? { cause: error } : {}),
      details: { cid: cid.toString() }
    })
  }
  log('found %d providers for %c', found.size, cid)
  return [...found.values()]
}

export interface AnnouncerOptions {
  /** Re-announce every root this often (ms). Default 12 h (provider records live 48 h). */
  reannounceInterval?: number
  /** First retry delay after a failed announcement (ms); doubles up to 5 min. Default 2 s. */
  retryDelay?: number
  /**
   * Whether the DHT can take queries (the routing table is not empty). While it is not,
   * `announce` starts the attempt in the background and returns false at once.
   */
  ready?: () => boolean
  /** One announcement attempt is abandoned after this many ms. Default 60 s. */
  attemptTimeout?: number
  /** Called after each announcement attempt (for logs and diagnostics). */
  onAnnounce?: (cid: CID, result: { ok: boolean, peers: number, error?: Error }) => void
}

/** Entries are keyed by multihash: provider records are, and a store may name a block by another codec. */
function entryKey (cid: CID): string {
  return toString(cid.multihash.bytes, 'base64')
}

interface Entry {
  cid: CID
  timer?: ReturnType<typeof setTimeout>
  retry: number
  running?: AbortController
  lastAnnounced?: number
}

/**
 * Keeps this node's provider records in the DHT for the roots it holds: announces each root
 * (retrying with backoff while the routing table is empty), re-announces on a schedule, and
 * stops when a root is withdrawn (evicted, unpinned) or the announcer is stopped.
 */
export class Announcer {
  private readonly entries = new Map<string, Entry>()
  private readonly interval: number
  private readonly retryDelay: number
  private stopped = false

  constructor (private readonly dht: KadDHT, private readonly options: AnnouncerOptions = {}) {
    this.interval = options.reannounceInterval ?? 12 * 60 * 60 * 1000
    this.retryDelay = options.retryDelay ?? 2000
  }

  /** Roots currently announced (or waiting to be). */
  roots (): CID[] {
    return [...this.entries.values()].map(e => e.cid)
  }

  has (cid: CID): boolean {
    return this.entries.has(entryKey(cid))
  }

  /**
   * Starts announcing `cid`. Resolves after the first attempt: true if at least one peer stored
   * the record (further attempts continue in the background either way).
   */
  async announce (cid: CID): Promise<boolean> {
    if (this.stopped) throw new SwarmpackError(DhtErrorCode.CLOSED, 'announcer is stopped')
    const key = entryKey(cid)
    let entry = this.entries.get(key)
    if (entry === undefined) {
      entry = { cid, retry: 0 }
      this.entries.set(key, entry)
    } else if (entry.running !== undefined) {
      return true
    }
    // kad-dht holds queries until the routing table has a peer: start the attempt, don't wait for it
    if (this.options.ready?.() === false) {
      void this.run(entry)
      return false
    }
    return this.run(entry)
  }

  /** Stops announcing `cid` (evicted or unpinned): no more re-announcements. */
  async withdraw (cid: CID): Promise<void> {
    const key = entryKey(cid)
    const entry = this.entries.get(key)
    if (entry === undefined) return
    this.entries.delete(key)
    clearTimeout(entry.timer)
    entry.running?.abort()
    try { await this.dht.cancelReprovide(cid) } catch {}
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const entry of this.entries.values()) {
      clearTimeout(entry.timer)
      entry.running?.abort()
    }
    this.entries.clear()
  }

  private schedule (entry: Entry, delay: number): void {
    clearTimeout(entry.timer)
    entry.timer = setTimeout(() => { void this.run(entry) }, delay)
    entry.timer.unref?.()
  }

  private async run (entry: Entry): Promise<boolean> {
    if (this.stopped || this.entries.get(entryKey(entry.cid)) !== entry) return false
    const controller = new AbortController()
    entry.running = controller
    const timeout = setTimeout(() => { controller.abort() }, this.options.attemptTimeout ?? 60_000)
    let peers = 0
    let lastError: Error | undefined
    try {
      for await (const event of this.dht.provide(entry.cid, { signal: controller.signal })) {
        if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') peers++
        if (event.name === 'QUERY_ERROR') lastError = event.error
      }
    } catch (err) {
      lastError = err as Error
    } finally {
      clearTimeout(timeout)
      entry.running = undefined
    }
    if (this.stopped || this.entries.get(entryKey(entry.cid)) !== entry) return false
    const ok = peers > 0
    this.options.onAnnounce?.(entry.cid, { ok, peers, ...(lastError !== undefined ? { error: lastError } : {}) })
    if (ok) {
      entry.retry = 0
      entry.lastAnnounced = Date.now()
      log('announced %c', entry.cid)
      this.schedule(entry, this.interval)
    } else {
      const delay = Math.min(this.retryDelay * 2 ** entry.retry, 5 * 60 * 1000)
      entry.retry++
      log('announcing %c failed (%s), retry in %d ms', entry.cid, lastError?.message, delay)
      this.schedule(entry, delay)
    }
    return ok
  }
}
