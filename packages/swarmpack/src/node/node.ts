/**
 * The node: composes the block store, trust, the fetcher over the swarm and mirrors, the libp2p
 * peer (or the host's own), PubGrub, generations and host hooks, and offers
 * follow → resolve → plan → apply, install / uninstall / update, generations, rollback and gc.
 * Mutating operations run one at a time.
 */
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join, resolve as resolvePath } from 'node:path'
import type { ComponentLogger, Libp2p, Logger } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { CustomProgressEvent } from 'progress-events'
import type { Dispatcher } from 'undici'
import { FsBlockstore, decodeManifest, isSwarmpackError } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer, type SwarmNode, type SwarmpackPeer } from '@swarmpack/dht-provider'
import { createDispatcher } from '@swarmpack/http-provider'
import { createFetcher } from '@swarmpack/resolver'
import { TrustVerifier, openIndexRoot } from '@swarmpack/trust'
import { applyPlan, switchToGeneration, syncPins, type ApplyContext, type ApplyResult } from '../apply/apply.js'
import type { NodeFetcher } from '../apply/fetcher.js'
import { Generations, type Generation } from '../apply/generations.js'
import { hookPackage, runHook, type HostHooks } from '../apply/hooks.js'
import { Journal, type Recovery } from '../apply/journal.js'
import { recover } from '../apply/recover.js'
import { catalogFromVerifier, type PackageInfo, type SearchHit, type SearchQuery } from '../catalog/catalog.js'
import { configDigest } from '../config/digest.js'
import { loadConfigFile, parseConfig, writeModules } from '../config/load.js'
import type { DeploymentConfig, DeploymentConfigInput, ModuleSpec } from '../config/schema.js'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import type { NodeProgressEvents } from '../events.js'
import { followIndexers, followedIndexes, type FollowContext, type FollowReport } from '../follow/follow.js'
import { indexHeadRecordFormat } from '../heads/format.js'
import { LOCKFILE_NAME, parseLock, type Lockfile } from '../lock/format.js'
import { computePlan, type Plan } from '../plan/plan.js'
import { attest, type AttestOptions, type SignedAttestation } from '../publish/attest.js'
import { createIndexer, type Indexer, type IndexerInit } from '../publish/indexer.js'
import { publish, type PublishMeta, type PublishOptions, type PublishResult, type VariantSource } from '../publish/publish.js'
import { resolveLock } from '../resolve/resolve.js'
import { buildSources, closeSources, httpProxyOption, type BuiltSource } from '../sources/build.js'
import { mapLimit } from '../util/limit.js'
import { exportNodeMirror, verifyStore, type MirrorExport, type MirrorExportOptions, type VerifyReport } from './maintenance.js'
import { trustPolicyOf } from './trust.js'
import { peerNetworkOptions } from './peer-config.js'
// operations (issue #12): updates, scrub, status, doctor, cache policy — src/ops
import { NodeOps } from '../ops/ops.js'
import type { NodeEvents } from '../ops/events.js'
import type { ApproveUpdate, CheckUpdatesOptions, UpdateCheck, UpdateSettings } from '../ops/updates.js'
import type { ScrubOptions, ScrubReport } from '../ops/scrub.js'
import type { NodeStatus } from '../ops/status.js'
import type { DoctorOptions, DoctorReport } from '../ops/doctor.js'
import type { GcDryRun } from '../ops/cache.js'
import type { LogEntry } from '../ops/logs.js'

/** Multicodec of dag-cbor: index envelopes are dag-cbor blocks. */
const DAG_CBOR = 0x71

export interface SwarmpackInit {
  /** Everything the node keeps (layout in the README). */
  dataDir: string
  /** The deployment config: an object, or the path of a JSON file (install/uninstall rewrite its `modules`). */
  config: DeploymentConfigInput | string
  /** The host's own libp2p node (must run a kad-dht service); otherwise the node starts one. */
  libp2p?: Libp2p
  /** The host's own block store; otherwise `<dataDir>/store`. Left open by `stop()`. */
  blockstore?: FsBlockstore
  /** load / unload hooks called for modules as generations switch. */
  host?: HostHooks
  /** Load the current generation's modules (dependency order) when the node starts. Default true. */
  loadOnStart?: boolean
  /** Attestations for a release (bytes), for trust's attestation thresholds. */
  attestations?: (name: string, version: string, manifest: CID) => Promise<Uint8Array[]>
  /** The host's logger (libp2p's ComponentLogger); default: the libp2p logger under `swarmpack:node*` (DEBUG=swarmpack:*). */
  logger?: ComponentLogger
  /** Clock for trust decisions (tests). */
  now?: () => number
  /** Follow the indexers during start (default true). */
  followOnStart?: boolean
  /** False: start no libp2p peer in this process whatever `sharing` says (local operations: list, gc, verify). Default true. */
  network?: boolean
  onProgress?: (evt: NodeProgressEvents) => void
  // ---- operations (src/ops)
  /** Asked before an automatic update is applied (policy `apply`); false, a throw or a timeout vetoes it. */
  approveUpdate?: ApproveUpdate
  /** Receives every structured log entry (fetch sources, follows, updates, scrub, errors). */
  onLog?: (entry: LogEntry) => void
  /** How often the peer's socket traffic is sampled for the idle upkeep rate, ms. Default 60 s. */
  upkeepSampleMs?: number
}

export interface OperationOptions {
  signal?: AbortSignal
  onProgress?: (evt: NodeProgressEvents) => void
}

export interface ResolveOptions extends OperationOptions {
  /** Move these packages (or all: true) to the newest versions within their ranges; others keep their locked version. */
  update?: string[] | true
  /** Follow the indexers first (default false: resolve against the heads accepted so far). */
  follow?: boolean
}

export interface NodeApplyOptions extends OperationOptions {
  /** Apply exactly a lockfile (`lock`, or `<dataDir>/swarmpack.lock`); ERR_LOCK_STALE if the config changed since. */
  frozen?: boolean
  lock?: Lockfile | string
  dryRun?: boolean
}

export interface GenerationInfo {
  number: number
  created: number
  current: boolean
  packages: Array<{ name: string, version: string, root: string }>
}

export interface GcReport {
  removedGenerations: number[]
  removedDirs: string[]
  removedBlocks: number
  freedBytes: number
}

export class Swarmpack {
  readonly dataDir: string
  config: DeploymentConfig
  readonly configFile?: string
  store!: FsBlockstore
  peer?: SwarmpackPeer
  swarm?: SwarmNode
  /** Trust; undefined while the config follows no indexer (a publishing-only node, a fresh init). */
  private trust?: TrustVerifier
  fetcher!: NodeFetcher
  readonly generations: Generations
  /** What start-up recovery found after a crash in apply/rollback (undefined: none). */
  recovery?: Recovery
  /** Follow results of the start. */
  followed: FollowReport[] = []
  private sources: BuiltSource[] = []
  private dispatcher?: Dispatcher
  /** shard CID -> the index that lists it (the fetch hint, see getBlock) */
  private readonly shardIndex = new Map<string, CID>()
  private readonly journal: Journal
  private ownsStore = false
  private queue: Promise<unknown> = Promise.resolve()
  private stopped = false
  private readonly log: Logger
  /** Updates, scrub, diagnostics and cache policy (src/ops). */
  ops?: NodeOps

  constructor (private readonly init: SwarmpackInit, config: DeploymentConfig, configFile?: string) {
    this.dataDir = resolvePath(init.dataDir)
    this.config = config
    if (configFile !== undefined) this.configFile = configFile
    this.log = init.logger?.forComponent('swarmpack:node') ?? logger('swarmpack:node')
    this.generations = new Generations(this.dataDir)
    this.journal = new Journal(this.dataDir)
  }

  async start (): Promise<void> {
    await mkdir(this.dataDir, { recursive: true })
    await this.generations.init()
    if (this.init.blockstore !== undefined) {
      this.store = this.init.blockstore
    } else {
      this.store = await FsBlockstore.open(join(this.dataDir, 'store'), this.config.cache.maxSize !== undefined ? { maxSize: this.config.cache.maxSize } : {})
      this.ownsStore = true
    }
    try {
      this.ops = new NodeOps({
        node: this,
        exclusive: async (fn) => this.exclusive(fn),
        dispatcher: () => this.dispatcher,
        ...(this.init.now !== undefined ? { now: this.init.now } : {}),
        ...(this.init.approveUpdate !== undefined ? { approveUpdate: this.init.approveUpdate } : {}),
        ...(this.init.attestations !== undefined ? { attestations: this.init.attestations } : {}),
        ...(this.init.onLog !== undefined ? { log: this.init.onLog } : {}),
        ...(this.init.upkeepSampleMs !== undefined ? { upkeepSampleMs: this.init.upkeepSampleMs } : {})
      })
      await this.ops.load()
      await this.startNetwork()
      this.trust = this.createVerifier(this.config)
      const recovered = await recover(this.dataDir, this.generations, this.journal, this.init.logger?.forComponent('swarmpack:node:recover'))
      if (recovered !== undefined) this.recovery = recovered
      await syncPins(this.ctx())
      if (this.init.followOnStart !== false) this.followed = await this.follow()
      if (this.init.loadOnStart !== false) await this.loadCurrent()
      this.ops.recordFollows(this.followed)
      this.ops.start()
    } catch (err) {
      await this.stop().catch(() => {})
      throw err
    }
  }

  private async startNetwork (): Promise<void> {
    const c = this.config
    if (c.sharing !== 'off' && this.init.network !== false) {
      this.peer = this.init.libp2p !== undefined
        ? await createSwarmpackPeer({ libp2p: this.init.libp2p, bootstrap: c.sources.bootstrap, headRecords: indexHeadRecordFormat(this.headFormatOptions()) })
        : await createSwarmpackPeer({
          dataDir: this.dataDir,
          headRecords: indexHeadRecordFormat(this.headFormatOptions()),
          bootstrap: c.sources.bootstrap,
          dhtProtocol: c.sources.dhtProtocol,
          // mode, addresses, connection limit, mDNS and the NAT services
          ...peerNetworkOptions(c.network)
        }).catch((err) => { throw listenError(err, c.network.listen) })
      this.swarm = await createSwarmNode({ peer: this.peer, blockstore: this.store, mode: c.sharing })
    }
    this.sources = await buildSources(c, this.swarm)
    this.dispatcher = createDispatcher(httpProxyOption(c))
    this.fetcher = createFetcher({
      blockstore: this.store,
      sources: this.sources,
      policy: c.sources.policy,
      ...(c.sources.hedgeAfterMs !== undefined ? { hedgeAfterMs: c.sources.hedgeAfterMs } : {}),
      ...(c.sources.stallTimeoutMs !== undefined ? { stallTimeoutMs: c.sources.stallTimeoutMs } : {})
    })
  }

  /**
   * Index, shard and release blocks for trust and the resolver. An index names its shards inside
   * its signed payload, and only the index envelope is pinned and announced by the nodes that
   * follow it, so shards are fetched with the index as the fetcher's root hint: the swarm then asks
   * the index's providers (a Bitswap session) instead of looking each shard up in the DHT.
   */
  private async getBlock (cid: CID, o?: { signal?: AbortSignal }): Promise<Uint8Array> {
    const root = this.shardIndex.get(cid.toString())
    const bytes = await this.fetcher.getBlock(cid, { ...(o?.signal !== undefined ? { signal: o.signal } : {}), ...(root !== undefined ? { root } : {}) })
    if (root === undefined && cid.code === DAG_CBOR) {
      try {
        for (const shard of openIndexRoot(bytes).shards) this.shardIndex.set(shard.toString(), cid)
      } catch { /* not an index envelope */ }
    }
    return bytes
  }

  private headFormatOptions (): { now?: () => number, skewMs?: number } {
    return {
      ...(this.init.now !== undefined ? { now: this.init.now } : {}),
      ...(this.config.trust.clockSkewMs !== undefined ? { skewMs: this.config.trust.clockSkewMs } : {})
    }
  }

  private followContext (options: OperationOptions = {}): FollowContext {
    const ctx: FollowContext = { config: this.config, verifier: this.verifier }
    if (this.peer !== undefined) ctx.peer = this.peer
    if (this.dispatcher !== undefined) ctx.dispatcher = this.dispatcher
    if (options.signal !== undefined) ctx.signal = options.signal
    if (options.onProgress !== undefined) ctx.onProgress = options.onProgress
    return ctx
  }

  private createVerifier (config: DeploymentConfig): TrustVerifier | undefined {
    if (config.indexers.length === 0) return undefined
    return new TrustVerifier({
      policy: trustPolicyOf(config),
      stateDir: join(this.dataDir, 'trust'),
      getBlock: async (cid, o) => this.getBlock(cid, o),
      ...(this.init.now !== undefined ? { now: this.init.now } : {})
    })
  }

  /** The trust verifier; ERR_INDEX_UNAVAILABLE while the config follows no indexer. */
  get verifier (): TrustVerifier {
    if (this.trust === undefined) throw nodeError(SwarmpackNodeErrorCode.INDEX_UNAVAILABLE, 'no indexer followed: the deployment config lists no indexers')
    return this.trust
  }

  private ctx (): ApplyContext {
    const self = this
    const ctx: ApplyContext = {
      dataDir: this.dataDir,
      store: this.store,
      fetcher: this.fetcher,
      // read when a release is checked, so a node that follows nothing can still gc and roll back
      get verifier () { return self.verifier },
      generations: this.generations,
      journal: this.journal,
      hooks: this.init.host ?? {},
      hookTimeoutMs: this.config.hooks.timeoutMs,
      keepGenerations: this.config.generations.keep,
      ...(this.init.logger !== undefined ? { log: this.init.logger.forComponent('swarmpack:node:apply') } : {}),
      // the fetcher cannot close the swarm's per-root Bitswap session itself (it only knows Providers)
      afterFetch: async (root) => { await this.swarm?.provider.closeSession(root) },
      onInstalled: (roots) => {
        for (const r of roots) void this.swarm?.announce(r).catch(() => {})
      }
    }
    if (this.init.attestations !== undefined) ctx.attestations = this.init.attestations
    return ctx
  }

  private async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    if (this.stopped) throw nodeError(SwarmpackNodeErrorCode.STOPPED, 'the node is stopped')
    const run = this.queue.then(fn, fn)
    this.queue = run.catch((err) => { this.ops?.recordError('operation', err) })
    return run
  }

  private progress (options: OperationOptions): OperationOptions {
    const a = options.onProgress
    const b = this.init.onProgress
    const ops = this.ops
    // operations call each other (install → resolve → follow): an already combined listener is passed on as is
    if ((a === undefined && b === undefined && ops === undefined) || (a !== undefined && this.combined.has(a))) return options
    // the operations layer (src/ops) sees every event too: fetch sources and follows for status() and the logs
    const onProgress = (evt: NodeProgressEvents): void => { ops?.observe(evt); a?.(evt); b?.(evt) }
    this.combined.add(onProgress)
    return { ...options, onProgress }
  }

  private readonly combined = new WeakSet<(evt: NodeProgressEvents) => void>()

  /** Loads every module of the current generation, dependencies first (at start, after a restart). */
  private async loadCurrent (): Promise<void> {
    const load = this.init.host?.load
    const g = await this.generations.current()
    if (load === undefined || g === undefined) return
    for (const name of g.loadOrder) {
      await runHook('load', load, hookPackage(g.packages[name], g.packages), { generation: g.number, reason: 'start' }, this.config.hooks.timeoutMs)
    }
  }

  /** Finds each followed indexer's newest head and has trust accept it. */
  async follow (options: OperationOptions = {}): Promise<FollowReport[]> {
    const opts = this.progress(options)
    if (this.trust === undefined) return []
    const reports = await followIndexers(this.followContext(opts))
    for (const r of reports) {
      opts.onProgress?.(new CustomProgressEvent('swarmpack:node:follow', { indexer: r.indexer, version: r.version ?? -1, changed: r.changed, source: r.source ?? '', ...(r.error !== undefined ? { error: r.error } : {}) }))
    }
    this.followed = reports
    return reports
  }

  /** Resolves the deployment against the followed indexes into a lock. Writes nothing of the deployment. */
  async resolve (options: ResolveOptions = {}): Promise<Lockfile> {
    const opts = this.progress(options)
    if (options.follow === true) await this.follow(opts)
    const t0 = Date.now()
    const current = await this.generations.current()
    const lock = await resolveLock({
      config: this.config,
      verifier: this.verifier,
      getBlock: async (cid, o) => this.getBlock(cid, o),
      indexes: await followedIndexes(this.config, this.verifier, this.followed),
      ...(current !== undefined ? { locked: current.lock } : {}),
      ...(options.update !== undefined ? { update: options.update } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      ...(this.init.attestations !== undefined ? { attestations: this.init.attestations } : {})
    })
    opts.onProgress?.(new CustomProgressEvent('swarmpack:node:resolve', { packages: Object.keys(lock.packages).length, ms: Date.now() - t0 }))
    return lock
  }

  /**
   * Brings the manifests of the packages a lock adds or replaces into the store (a few KiB each,
   * fetched anyway by apply), so the plan's byte counts are exact rather than package sizes.
   */
  async fetchManifests (lock: Lockfile, options: OperationOptions = {}): Promise<void> {
    const installed = new Set(Object.values((await this.generations.current())?.packages ?? {}).map(p => p.root))
    const roots = Object.values(lock.packages).map(p => p.manifest).filter(m => !installed.has(m)).map(m => CID.parse(m))
    await mapLimit(roots, 8, async (root) => {
      await decodeManifest(root, { get: async (cid, o) => this.fetcher.getBlock(cid, { root, ...(o?.signal !== undefined ? { signal: o.signal } : options.signal !== undefined ? { signal: options.signal } : {}) }) })
    })
  }

  /** What applying `lock` would change, and the bytes to fetch; reads only local state (see fetchManifests). */
  async plan (lock: Lockfile, options: OperationOptions = {}): Promise<Plan> {
    const plan = await computePlan(lock, await this.generations.current(), { has: (cid) => this.store.has(cid), get: async (cid, o) => this.store.getBytes(cid, o) })
    const count = (a: string): number => plan.changes.filter(c => c.action === a).length
    this.progress(options).onProgress?.(new CustomProgressEvent('swarmpack:node:plan', { add: count('add'), remove: count('remove'), replace: count('replace'), unchanged: count('unchanged'), fetchBytes: plan.bytes.fetch, changes: plan.changes }))
    return plan
  }

  /** Reads a lockfile (default `<dataDir>/swarmpack.lock`). */
  async readLock (path = join(this.dataDir, LOCKFILE_NAME)): Promise<Lockfile> {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      throw nodeError(SwarmpackNodeErrorCode.LOCK_INVALID, `cannot read lockfile ${path}`, { file: path }, err)
    }
    return parseLock(text, path)
  }

  /**
   * Applies a plan; without one, resolves (keeping locked versions) and plans first; with
   * `frozen`, applies exactly a lockfile after checking it was written for this config.
   */
  async apply (plan?: Plan, options: NodeApplyOptions = {}): Promise<ApplyResult> {
    return this.exclusive(async () => this.applyUnlocked(plan, options))
  }

  private async applyUnlocked (plan: Plan | undefined, options: NodeApplyOptions): Promise<ApplyResult> {
    const opts = this.progress(options)
    if (plan === undefined) {
      let lock: Lockfile
      if (options.frozen === true) {
        lock = typeof options.lock === 'object' ? options.lock : await this.readLock(options.lock)
        const digest = configDigest(this.config)
        if (lock.configDigest !== digest) {
          throw nodeError(SwarmpackNodeErrorCode.LOCK_STALE, `the lockfile was written for another deployment config (${lock.configDigest}, now ${digest}); resolve again or drop --frozen`, { locked: lock.configDigest, config: digest })
        }
      } else {
        lock = await this.resolve(opts)
      }
      await this.fetchManifests(lock, opts)
      plan = await this.plan(lock, opts)
    }
    return applyPlan(this.ctx(), plan, { ...opts, ...(options.dryRun !== undefined ? { dryRun: options.dryRun } : {}) })
  }

  private async changeModules (modules: Record<string, ModuleSpec>, options: NodeApplyOptions, update?: string[] | true): Promise<ApplyResult> {
    return this.exclusive(async () => {
      const before = this.config
      const next = parseConfig({ ...structuredClone(before), modules })
      // the file keeps its relative paths: only `modules` is rewritten
      next.sources.directories = before.sources.directories
      next.indexers = before.indexers
      this.config = next
      try {
        const opts = this.progress(options)
        const lock = await this.resolve({ ...opts, ...(update !== undefined ? { update } : {}) })
        await this.fetchManifests(lock, opts)
        const plan = await this.plan(lock, opts)
        const result = await applyPlan(this.ctx(), plan, { ...opts, ...(options.dryRun !== undefined ? { dryRun: options.dryRun } : {}) })
        if (options.dryRun === true) this.config = before
        else if (this.configFile !== undefined) await writeModules(this.configFile, modules)
        return result
      } catch (err) {
        this.config = before
        throw err
      }
    })
  }

  /** Adds (or changes the range of) wanted modules and applies. */
  async install (modules: Record<string, ModuleSpec>, options: NodeApplyOptions = {}): Promise<ApplyResult> {
    return this.changeModules({ ...this.config.modules, ...modules }, options)
  }

  /** Removes wanted modules and applies (their dependencies go too unless something else needs them). */
  async uninstall (names: string[], options: NodeApplyOptions = {}): Promise<ApplyResult> {
    const unknown = names.filter(n => this.config.modules[n] === undefined)
    if (unknown.length > 0) throw nodeError(SwarmpackNodeErrorCode.INVALID_ARGUMENT, `not in the deployment: ${unknown.join(', ')}`, { names: unknown })
    const modules = Object.fromEntries(Object.entries(this.config.modules).filter(([n]) => !names.includes(n)))
    return this.changeModules(modules, options)
  }

  /** Follows the indexers, re-resolves within the ranges (these names, or everything) and applies. */
  async update (names?: string[], options: NodeApplyOptions = {}): Promise<ApplyResult> {
    await this.follow(options)
    return this.changeModules({ ...this.config.modules }, options, names === undefined || names.length === 0 ? true : names)
  }

  async listGenerations (): Promise<GenerationInfo[]> {
    const cur = await this.generations.currentNumber()
    return (await this.generations.list()).map(g => ({
      number: g.number,
      created: g.created,
      current: g.number === cur,
      packages: Object.values(g.packages).map(p => ({ name: p.name, version: p.version, root: p.root })).sort((a, b) => a.name < b.name ? -1 : 1)
    }))
  }

  async current (): Promise<Generation | undefined> {
    return this.generations.current()
  }

  /** Re-hashes every block of the store (corrupt ones are removed) and lists pinned roots with missing blocks. */
  async verify (options: { signal?: AbortSignal, onProgress?: (evt: any) => void } = {}): Promise<VerifyReport> {
    return this.exclusive(async () => verifyStore(this.store, options))
  }

  /** Writes a static mirror (core's layout) of these roots, or of everything the node pins, plus the heads it holds. */
  async exportMirror (dir: string, options: MirrorExportOptions = {}): Promise<MirrorExport> {
    return exportNodeMirror(this.store, this.trust, this.config, dir, options)
  }

  /** Switches to generation n (same hook order as apply: unload dependents first, switch, load). */
  async rollback (n: number, options: OperationOptions = {}): Promise<void> {
    return this.exclusive(async () => {
      const target = await this.generations.read(n)
      const current = await this.generations.current()
      if (current?.number === n) return
      const plan = await computePlan(target.lock, current, { has: () => true, get: async () => new Uint8Array() })
      await switchToGeneration(this.ctx(), target, plan, this.progress(options))
    })
  }

  /**
   * Keeps the current generation and the newest others up to `keep` in all; removes the rest, their unused package dirs and every unpinned block.
   * With `dryRun: true`, changes nothing and reports what would go and how many bytes (src/ops/cache.ts).
   */
  async gc (options: { keep?: number, signal?: AbortSignal, dryRun: true }): Promise<GcDryRun>
  async gc (options?: { keep?: number, signal?: AbortSignal, dryRun?: false }): Promise<GcReport>
  async gc (options: { keep?: number, signal?: AbortSignal, dryRun?: boolean } = {}): Promise<GcReport | GcDryRun> {
    if (options.dryRun === true) return (this.ops as NodeOps).gcDryRun(options.keep ?? this.config.generations.keep, options.signal)
    return this.exclusive(async () => {
      const keep = options.keep ?? this.config.generations.keep
      if (!Number.isInteger(keep) || keep < 1) throw nodeError(SwarmpackNodeErrorCode.INVALID_ARGUMENT, `keep must be a whole number of at least 1 (the current generation always stays), not ${keep}`)
      const cur = await this.generations.currentNumber()
      const all = await this.generations.numbers()
      // the current generation always stays and counts as one of `keep`
      const others = all.filter(n => n !== cur)
      const kept = new Set(others.slice(Math.max(0, others.length - (keep - (cur !== undefined ? 1 : 0)))))
      if (cur !== undefined) kept.add(cur)
      const removedGenerations = all.filter(n => !kept.has(n))
      for (const n of removedGenerations) await this.generations.remove(n)
      const keptGens = await this.generations.list()
      const removedDirs = await this.generations.unusedPackageDirs(keptGens)
      for (const d of removedDirs) await rm(d, { recursive: true, force: true })
      await syncPins(this.ctx())
      const report = await this.store.gc(options.signal !== undefined ? { signal: options.signal } : {})
      return { removedGenerations, removedDirs, removedBlocks: report.removedBlocks, freedBytes: report.removedBytes }
    })
  }

  /**
   * Announces every root the node pins (installed and locked packages, releases, index blocks) and
   * resolves once each attempt finished; returns how many were stored in the DHT. The sharing node
   * also re-announces them at start and on its own schedule; this is for hosts (and tests) that
   * want to know the swarm can find them now.
   */
  async announceInstalled (): Promise<number> {
    if (this.swarm === undefined || this.config.sharing === 'consume') return 0
    const roots = this.store.pins().filter(p => p.name.startsWith('swarmpack:') || p.name.startsWith('published:')).map(p => p.root)
    const stored = await Promise.all(roots.map(async r => this.swarm?.announce(r).catch(() => false)))
    return stored.filter(s => s === true).length
  }

  /**
   * Publishes a directory (or one per variant) as a signed release into this node's store: the
   * blocks are pinned (`published:<name>@<version>`) and announced, so this node serves them.
   * With `indexer`, the release is listed (and, by default, the next index version published).
   */
  async publish (dir: string | VariantSource[], meta: PublishMeta, options: Omit<PublishOptions, 'blockstore'>): Promise<PublishResult> {
    const result = await publish(dir, meta, { ...options, blockstore: this.store })
    const roots = [result.release.cid, ...result.variants.map(v => v.manifest)]
    for (const [i, root] of roots.entries()) {
      await this.store.pin(`published:${result.name}@${result.version}:${i === 0 ? 'release' : result.variants[i - 1].key}`, root)
      void this.swarm?.announce(root).catch(() => {})
    }
    return result
  }

  /**
   * An indexer over this node's store and DHT: `add` releases, `publish` the next signed index
   * version and head (into the DHT and, with `mirrorDir`, a static mirror). State in
   * `<dataDir>/indexers` unless `stateDir` is given.
   */
  async indexer (init: Omit<IndexerInit, 'blockstore' | 'stateDir' | 'dht'> & { stateDir?: string }): Promise<Indexer> {
    const indexer = await createIndexer({
      ...init,
      blockstore: this.store,
      stateDir: init.stateDir ?? join(this.dataDir, 'indexers'),
      ...(this.peer !== undefined ? { dht: this.peer.dht } : {}),
      getBlock: init.getBlock ?? (async (cid, o) => this.getBlock(cid, o)),
      ...(this.init.now !== undefined && init.now === undefined ? { now: this.init.now } : {})
    })
    // followers ask the swarm for the index block by its CID (and for its shards through the
    // index's providers): announce each new index as it is published
    const publishVersion = indexer.publish
    indexer.publish = async (options) => {
      const version = await publishVersion(options)
      // awaited: a follower that reads the new head right after finds the index's provider
      await this.swarm?.announce(version.index).catch(() => false)
      return version
    }
    return indexer
  }

  /** Searches the followed indexes (their accepted versions) by words, category or tag; answers from index entries only. */
  async search (query: SearchQuery = {}): Promise<SearchHit[]> {
    return (await catalogFromVerifier(this.verifier, async (cid, o) => this.getBlock(cid, o))).search(query)
  }

  /** Everything the followed indexes say about one package (versions, variants, dependencies, description); ERR_CATALOG_NOT_FOUND when none knows it. */
  async info (name: string, options: { signal?: AbortSignal } = {}): Promise<PackageInfo> {
    return (await catalogFromVerifier(this.verifier, async (cid, o) => this.getBlock(cid, o))).info(name, options)
  }

  /** Signs attestations for a release (stored as blocks in this node's store). */
  async attest (release: Uint8Array, options: Omit<AttestOptions, 'blockstore'>): Promise<SignedAttestation[]> {
    return attest(release, { ...options, blockstore: this.store })
  }

  // ---- operations (issue #12, src/ops): updates, scrub, diagnostics, cache policy

  /** Events of the running node: `update:available`, `update:applied`, `update:failed`, `scrub:done`, `error`. */
  get events (): NodeEvents {
    return (this.ops as NodeOps).events
  }

  /** One update check now (follow, resolve within ranges, plan); `apply: true` applies when `updates.policy` (or `policy`) is `apply`. */
  async checkUpdates (options: CheckUpdatesOptions & { policy?: UpdateSettings['policy'] } = {}): Promise<UpdateCheck> {
    return (this.ops as NodeOps).checkUpdates(options)
  }

  /** Watches for updates with these settings (over the config's `updates`); returns a function that stops watching. */
  watchUpdates (settings: Partial<UpdateSettings> = {}): () => Promise<void> {
    return (this.ops as NodeOps).watchUpdates(settings)
  }

  /** Re-hashes the store, checks installed files against their manifests and installed releases against the indexes. */
  async scrub (options: ScrubOptions = {}): Promise<ScrubReport> {
    return (this.ops as NodeOps).scrub(options)
  }

  /** The node's state: peer, DHT, heads, cache, packages and their fetch sources, schedules, recent errors. */
  async status (): Promise<NodeStatus> {
    return (this.ops as NodeOps).status()
  }

  /** Runs the diagnostics checks; each finding has a status, a code and a suggested fix. */
  async doctor (options: DoctorOptions = {}): Promise<DoctorReport> {
    return (this.ops as NodeOps).doctor(options)
  }

  /** Stops the network side and releases the store, sockets and timers. Modules stay loaded (the host owns them). */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await this.ops?.stop().catch((err) => { this.log.error('stopping operations: %e', err) })
    await this.queue.catch(() => {})
    await this.swarm?.stop().catch((err) => { this.log.error('stopping the sharing node: %e', err) })
    await closeSources(this.sources)
    await this.dispatcher?.close().catch(() => {})
    // the host's own libp2p node is the host's to stop
    if (this.init.libp2p === undefined) await this.peer?.stop().catch((err) => { this.log.error('stopping the peer: %e', err) })
    if (this.ownsStore) await this.store?.close().catch((err) => { if (!isSwarmpackError(err)) throw err })
  }
}

/** libp2p's failure to bind a listen address (port taken, address not local) as a typed error (ops). */
function listenError (err: unknown, listen: string[] | undefined): unknown {
  if (!/UnsupportedListenAddress/.test((err as Error)?.name ?? '')) return err
  return nodeError(SwarmpackNodeErrorCode.LISTEN_NOT_BOUND, `cannot listen on ${(listen ?? []).join(' ') || 'the default addresses'}: ${(err as Error).message.split('\n').filter(l => l.includes('/')).map(l => l.trim()).join('; ')}`, { listen }, err)
}

/** Creates and starts a node. */
export async function createSwarmpack (init: SwarmpackInit): Promise<Swarmpack> {
  let config: DeploymentConfig
  let file: string | undefined
  if (typeof init.config === 'string') {
    file = resolvePath(init.config)
    config = await loadConfigFile(file)
  } else {
    config = parseConfig(init.config)
  }
  const node = new Swarmpack(init, config, file)
  await node.start()
  return node
}
