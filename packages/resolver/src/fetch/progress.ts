/**
 * One fetch's accounting: network and local blocks/bytes counted apart, shares per source (and
 * per peer or mirror inside it), hedges, bans. Every event goes both to the caller's `onProgress`
 * and to the log, so the log says who served what.
 */
import { logger } from '@libp2p/logger'
import { CustomProgressEvent } from 'progress-events'
import type { CID } from 'multiformats/cid'
import type {
  BanRecord, FetchBlockDetail, FetchHedgeDetail, FetchMissDetail, FetchOptions, FetchResult,
  FetchStartDetail, FetchSwitchDetail, SourceKind, SourceShare
} from './types.js'

const log = logger('swarmpack:fetch')

export class FetchAccount {
  readonly started = Date.now()
  private networkBlocks = 0
  private networkBytes = 0
  private localBlocks = 0
  private localBytes = 0
  private readonly shares = new Map<string, SourceShare>()
  readonly banned: BanRecord[] = []
  hedges = 0
  hedgeWins = 0
  fallbacks = 0
  /** Last time a verified block arrived or was found local (the stall clock). */
  lastProgress = Date.now()
  /** While set, events are held back (the manifest pass runs before totals are known). */
  private held?: Array<CustomProgressEvent<unknown>>

  constructor (private readonly onProgress: FetchOptions['onProgress'], readonly root?: CID) {}

  private emit (type: string, detail: unknown): void {
    const evt = new CustomProgressEvent(type, detail)
    if (this.held !== undefined) this.held.push(evt)
    else this.onProgress?.(evt as never)
  }

  hold (): void {
    this.held ??= []
  }

  /** Emits `start` with the totals, then whatever was held back. */
  start (detail: FetchStartDetail): void {
    const held = this.held ?? []
    this.held = undefined
    log('fetch%s started: %s blocks, %s bytes known', this.root !== undefined ? ` of ${this.root.toString()}` : '', detail.totalBlocks ?? '?', detail.totalBytes ?? '?')
    this.emit('swarmpack:fetch:start', detail)
    for (const evt of held) this.onProgress?.(evt as never)
  }

  local (cid: CID, bytes: number): void {
    this.localBlocks++
    this.localBytes += bytes
    this.lastProgress = Date.now()
    this.emit('swarmpack:fetch:block', { cid, bytes, source: 'local', local: true } satisfies FetchBlockDetail)
  }

  network (detail: Omit<FetchBlockDetail, 'local'> & { kind: SourceKind }): void {
    this.networkBlocks++
    this.networkBytes += detail.bytes
    this.lastProgress = Date.now()
    const key = `${detail.source}\u0000${detail.origin ?? ''}`
    let share = this.shares.get(key)
    if (share === undefined) {
      share = { source: detail.source, kind: detail.kind, ...(detail.origin !== undefined && detail.origin !== detail.source ? { origin: detail.origin } : {}), blocks: 0, bytes: 0 }
      this.shares.set(key, share)
      log('first block from %s%s', detail.source, share.origin !== undefined ? ` (${share.origin})` : '')
    }
    share.blocks++
    share.bytes += detail.bytes
    if (detail.hedged === true) this.hedgeWins++
    log.trace('%c %d bytes from %s %s', detail.cid, detail.bytes, detail.source, detail.origin ?? '')
    this.emit('swarmpack:fetch:block', { ...detail, local: false } satisfies FetchBlockDetail)
  }

  miss (detail: FetchMissDetail): void {
    log('%s did not supply %c: %s', detail.source, detail.cid, detail.reason)
    this.emit('swarmpack:fetch:miss', detail)
  }

  hedge (detail: FetchHedgeDetail): void {
    this.hedges++
    log.trace('hedging %c: %s after %d ms, also asking %s', detail.cid, detail.from, detail.afterMs, detail.to)
    this.emit('swarmpack:fetch:hedge', detail)
  }

  ban (record: BanRecord): void {
    this.banned.push(record)
    log('banned %s%s for this fetch: %s (block %s)', record.source, record.peer !== undefined ? ` peer ${record.peer}` : '', record.reason, record.cid)
    this.emit('swarmpack:fetch:ban', record)
  }

  switch (detail: FetchSwitchDetail): void {
    log('source %s %s: %s', detail.source, detail.state, detail.reason)
    this.emit('swarmpack:fetch:source-switch', detail)
  }

  result (): FetchResult {
    return {
      ...(this.root !== undefined ? { root: this.root } : {}),
      blocks: { network: this.networkBlocks, local: this.localBlocks, total: this.networkBlocks + this.localBlocks },
      bytes: { network: this.networkBytes, local: this.localBytes, total: this.networkBytes + this.localBytes },
      sources: [...this.shares.values()].sort((a, b) => b.bytes - a.bytes),
      banned: [...this.banned],
      hedges: this.hedges,
      hedgeWins: this.hedgeWins,
      fallbacks: this.fallbacks,
      ms: Date.now() - this.started
    }
  }

  done (): FetchResult {
    const result = this.result()
    log('fetch done in %d ms: %d blocks (%d bytes) from the network, %d local; %s', result.ms, result.blocks.network, result.bytes.network, result.blocks.local,
      result.sources.map(s => `${s.source}${s.origin !== undefined ? `/${s.origin}` : ''} ${s.bytes} B`).join(', ') || 'no network')
    this.emit('swarmpack:fetch:done', result)
    return result
  }
}
