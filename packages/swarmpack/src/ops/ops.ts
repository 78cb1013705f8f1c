/**
 * NodeOps: the node's operations layer (issue #12). Owns the update watcher, the scrub and cache
 * schedules, the upkeep meter, the ops journal and the structured log; observes the node's
 * progress events (fetch sources, follows) for `status()`. Every timer is unref'd and cleared on
 * `stop()`; a scheduled job never overlaps itself.
 */
import type { CID } from 'multiformats/cid'
import { isSwarmpackError } from '@swarmpack/core'
import type { Swarmpack } from '../node/node.js'
import type { Dispatcher } from 'undici'
import { NodeEvents } from './events.js'
import type { OpsHost } from './host.js'
import { OpsJournal, type FetchRecord } from './journal.js'
import { OpsLog, type LogEntry } from './logs.js'
import { UpkeepMeter } from './network.js'
import { UpdateWatcher, type ApproveUpdate, type CheckUpdatesOptions, type UpdateCheck, type UpdateSettings } from './updates.js'
import { scrub, type ScrubOptions, type ScrubReport } from './scrub.js'
import { nodeStatus, type NodeStatus } from './status.js'
import { runDoctor, type DoctorOptions, type DoctorReport } from './doctor.js'
import { enforceCachePolicy, gcDryRun, type CachePassReport, type GcDryRun } from './cache.js'

export interface OpsInit {
  node: Swarmpack
  exclusive: <T>(fn: () => Promise<T>) => Promise<T>
  dispatcher: () => Dispatcher | undefined
  now?: () => number
  approveUpdate?: ApproveUpdate
  attestations?: (name: string, version: string, manifest: CID) => Promise<Uint8Array[]>
  log?: (entry: LogEntry) => void
  /** Traffic sample interval for the upkeep rate (ms). Default 60 s. */
  upkeepSampleMs?: number
}

export class NodeOps {
  readonly events = new NodeEvents()
  readonly journal: OpsJournal
  readonly log: OpsLog
  readonly host: OpsHost
  private watcher?: UpdateWatcher
  meter?: UpkeepMeter
  private scrubTimer?: ReturnType<typeof setTimeout>
  private cacheTimer?: ReturnType<typeof setInterval>
  private scrubbing?: Promise<ScrubReport>
  private readonly controller = new AbortController()
  private stopped = false

  constructor (private readonly init: OpsInit) {
    const node = init.node
    this.journal = new OpsJournal(node.dataDir)
    this.log = new OpsLog({ json: node.config.logs.json, ...(node.config.logs.file !== undefined ? { file: node.config.logs.file } : {}), ...(init.log !== undefined ? { sink: init.log } : {}) })
    this.host = { node, exclusive: init.exclusive, dispatcher: init.dispatcher, journal: this.journal, log: this.log, events: this.events, now: init.now ?? Date.now }
  }

  /** Loads the journal (before the node's start-up follow, so its records land). */
  async load (): Promise<void> {
    await this.journal.load()
  }

  /** Starts the schedules (after the node started). */
  start (): void {
    const config = this.init.node.config
    if (this.init.node.peer !== undefined) {
      this.meter = new UpkeepMeter(this.init.node.peer, this.init.upkeepSampleMs ?? 60_000)
      this.meter.start()
    }
    this.watcher = new UpdateWatcher(this.host, config.updates, this.init.approveUpdate)
    this.watcher.start()
    if (config.scrub.intervalMs > 0) this.scheduleScrub(config.scrub.intervalMs)
    if (config.cache.maxSize !== undefined) {
      this.cacheTimer = setInterval(() => { void this.cachePass().catch(() => {}) }, config.cache.checkIntervalMs)
      this.cacheTimer.unref?.()
    }
  }

  /** Sees every progress event of the node's operations (fetch sources for status and logs, follows). */
  observe (evt: { type: string, detail?: any }): void {
    const d = evt.detail
    if (evt.type === 'swarmpack:node:fetched') {
      const rec: FetchRecord = { name: d.name, version: d.version, at: Date.now(), ms: d.ms, bytes: d.bytes, sources: d.sources }
      this.journal.fetched(rec)
      this.meter?.markBusy()
      this.log.write('info', 'fetch', { package: `${d.name}@${d.version}`, bytes: d.bytes, ms: d.ms, sources: d.sources })
    } else if (evt.type === 'swarmpack:node:fetch-start') {
      this.meter?.markBusy()
    } else if (evt.type === 'swarmpack:node:follow') {
      this.journal.state.follows[d.indexer] = { indexer: d.indexer, at: Date.now(), changed: d.changed === true, ...(d.version >= 0 ? { version: d.version } : {}), ...(d.source !== '' && d.source !== undefined ? { source: d.source } : {}), ...(d.error !== undefined ? { error: d.error } : {}) }
      this.journal.changed()
      if (d.error !== undefined) {
        this.events.emit('error', this.journal.error('follow', d.error, { indexer: d.indexer }))
        this.log.write('warn', 'follow', { indexer: d.indexer, version: d.version, error: d.error })
      } else {
        this.log.write('info', 'follow', { indexer: d.indexer, version: d.version, changed: d.changed, source: d.source })
      }
    } else if (evt.type === 'swarmpack:fetch:ban') {
      this.log.write('warn', 'fetch:ban', { ...d, package: d.package })
    }
  }

  /** Records the follow the node did while starting (it reports, it emits no events). */
  recordFollows (reports: Array<{ indexer: string, version?: number, changed: boolean, source?: string, error?: { code: string, message: string } }>): void {
    for (const r of reports) this.observe({ type: 'swarmpack:node:follow', detail: { ...r, version: r.version ?? -1, source: r.source ?? '' } })
  }

  /** Records a failed node operation (apply, install, gc ...) for `status().errors`. */
  recordError (op: string, err: unknown): void {
    if (!isSwarmpackError(err) || err.code === 'ERR_ABORTED') return
    const rec = this.journal.error(op, err)
    this.log.write('error', 'error', { op, code: rec.code, message: rec.message })
    this.events.emit('error', rec)
  }

  // ---- updates

  /** One update check now; with `apply: true` it applies when the policy allows (as the watcher does). */
  async checkUpdates (options: CheckUpdatesOptions & { policy?: UpdateSettings['policy'] } = {}): Promise<UpdateCheck> {
    const settings = { ...this.init.node.config.updates, ...(options.policy !== undefined ? { policy: options.policy } : {}) }
    const w = new UpdateWatcher(this.host, settings, this.init.approveUpdate)
    return w.check(options)
  }

  /** Starts (or restarts) the watcher with these settings instead of the config's; returns a stop function. */
  watchUpdates (settings: Partial<UpdateSettings> = {}): () => Promise<void> {
    void this.watcher?.stop()
    const merged: UpdateSettings = { ...this.init.node.config.updates, ...settings }
    if (merged.policy === 'off') merged.policy = 'notify'
    const w = new UpdateWatcher(this.host, merged, this.init.approveUpdate)
    this.watcher = w
    w.start()
    return async () => { await w.stop() }
  }

  get watchingUpdates (): boolean {
    return this.watcher?.active === true
  }

  // ---- scrub

  private scheduleScrub (ms: number): void {
    if (this.stopped) return
    this.scrubTimer = setTimeout(() => {
      void this.scrub({ signal: this.controller.signal }).catch(() => {}).finally(() => { this.scheduleScrub(ms) })
    }, ms)
    this.scrubTimer.unref?.()
  }

  /** Runs a scrub (one at a time: a second call while one runs gets the running one). */
  async scrub (options: ScrubOptions = {}): Promise<ScrubReport> {
    if (this.scrubbing !== undefined) return this.scrubbing
    const config = this.init.node.config.scrub
    const run = scrub(this.host, {
      restore: config.restore,
      revoked: config.revoked,
      rateBytesPerSec: config.rateBytesPerSec,
      ...(this.init.attestations !== undefined ? { attestations: this.init.attestations } : {})
    }, options)
    this.scrubbing = run
    try {
      const report = await run
      this.journal.state.lastScrub = {
        at: report.started,
        ms: report.ms,
        ok: report.ok,
        corrupt: report.store.corrupt.length,
        refetched: report.store.refetched.length,
        modified: report.installed.findings.length,
        restored: report.installed.findings.filter(f => f.restored).length,
        flagged: report.indexes.findings.length
      }
      this.journal.changed()
      this.log.write(report.ok ? 'info' : 'warn', 'scrub', { ok: report.ok, ms: report.ms, checked: report.store.checked, corrupt: report.store.corrupt, refetched: report.store.refetched, files: report.installed.findings, releases: report.indexes.findings, uninstalled: report.indexes.uninstalled })
      this.events.emit('scrub:done', report)
      return report
    } catch (err) {
      this.recordError('scrub', err)
      throw err
    } finally {
      this.scrubbing = undefined
    }
  }

  // ---- diagnostics, cache

  async status (): Promise<NodeStatus> {
    return nodeStatus(this.host, { watching: this.watchingUpdates, ...(this.meter !== undefined ? { upkeep: this.meter } : {}) })
  }

  async doctor (options: DoctorOptions = {}): Promise<DoctorReport> {
    return runDoctor(this.host, this.meter, options)
  }

  async gcDryRun (keep: number, signal?: AbortSignal): Promise<GcDryRun> {
    return this.init.exclusive(async () => gcDryRun(this.host, keep, signal))
  }

  async cachePass (): Promise<CachePassReport> {
    try {
      return await enforceCachePolicy(this.host, this.controller.signal)
    } catch (err) {
      this.recordError('cache', err)
      throw err
    }
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.controller.abort()
    clearTimeout(this.scrubTimer)
    clearInterval(this.cacheTimer)
    this.meter?.stop()
    await this.watcher?.stop()
    await this.scrubbing?.catch(() => {})
    await this.journal.flush()
    await this.log.close()
  }
}

