/**
 * apply: build generation N+1 completely (fetch and verify every release and its blocks, unpack
 * each package into its own immutable directory, write the generation manifest) before touching
 * the host; then unload the affected modules dependents-first, switch `current` atomically and
 * load in dependency order. On any failure: unload what was loaded, switch back, reload what was
 * unloaded, and report every error together (ERR_APPLY_FAILED). Each step is recorded in the
 * journal first, so a crash anywhere leaves the old or the new generation in force (journal.ts).
 */
import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import type { Logger } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { CustomProgressEvent } from 'progress-events'
import { decodeManifest, storeProvider, unpack, isSwarmpackError, writeFileAtomic, type FsBlockstore } from '@swarmpack/core'
import type { TrustVerifier } from '@swarmpack/trust'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import type { NodeProgressEvents } from '../events.js'
import { LOCKFILE_NAME, lockEntries, loadOrder, serializeLock, type LockEntry, type Lockfile } from '../lock/format.js'
import type { Plan } from '../plan/plan.js'
import { mapLimit } from '../util/limit.js'
import type { NodeFetcher } from './fetcher.js'
import type { Generations, Generation, InstalledPackage } from './generations.js'
import { hookPackage, runHook, type HostHooks } from './hooks.js'
import { Journal, type ApplyStep, type JournalRecord } from './journal.js'
import { generationRoots, lockRoots, protect, reconcilePins } from './pins.js'

const defaultLog = logger('swarmpack:node:apply')

export interface ApplyContext {
  dataDir: string
  store: FsBlockstore
  fetcher: NodeFetcher
  verifier: TrustVerifier
  generations: Generations
  journal: Journal
  hooks: HostHooks
  hookTimeoutMs: number
  keepGenerations: number
  attestations?: (name: string, version: string, manifest: CID) => Promise<Uint8Array[]>
  /** The host's logger for this component (default: the libp2p logger `swarmpack:node:apply`). */
  log?: Logger
  /** Called after a package's blocks were fetched (the node closes the swarm's session for that root). */
  afterFetch?: (root: CID) => Promise<void>
  /** Called with roots that became installed (announce them). */
  onInstalled?: (roots: CID[]) => void
}

export interface ApplyOptions {
  signal?: AbortSignal
  onProgress?: (evt: NodeProgressEvents) => void
  /** Compute and return the plan, change nothing. */
  dryRun?: boolean
  /** Packages fetched (default 8) and unpacked (default 4) at once. */
  concurrency?: number
}

export interface ApplyResult {
  plan: Plan
  /** Generation in force afterwards (undefined: none). */
  generation?: number
  /** False for a dry run or a plan that changes nothing. */
  changed: boolean
  bytes: { network: number, local: number }
}

function emit (options: { onProgress?: (evt: NodeProgressEvents) => void }, type: string, detail: unknown): void {
  options.onProgress?.(new CustomProgressEvent(type, detail) as NodeProgressEvents)
}

/** Writes the lock of the generation in force as `swarmpack.lock` (none: removes it). */
export async function writeCurrentLock (dataDir: string, lock: Lockfile | undefined): Promise<void> {
  const path = join(dataDir, LOCKFILE_NAME)
  if (lock === undefined) await rm(path, { force: true })
  else await writeFileAtomic(path, new TextEncoder().encode(serializeLock(lock)))
}

async function exists (path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}

/** Checks one locked release against the trust policy and brings every block of its package into the store. */
async function fetchPackage (ctx: ApplyContext, e: LockEntry, options: ApplyOptions, totals: { network: number, local: number }): Promise<void> {
  const manifest = CID.parse(e.manifest)
  const attestations = await ctx.attestations?.(e.name, e.version, manifest) ?? []
  // every release passes the trust policy again at install time, whatever the lock says
  const decision = await ctx.verifier.checkInstallable(e.name, e.version, manifest, { variant: e.variant, attestations, ...(options.signal !== undefined ? { signal: options.signal } : {}) })
  if (decision.release.toString() !== e.release) {
    throw nodeError(SwarmpackNodeErrorCode.LOCK_STALE, `the followed indexes list another release for ${e.key} than the lock (${decision.release.toString()} vs ${e.release})`, { name: e.name, version: e.version })
  }
  emit(options, 'swarmpack:node:verify', { name: e.name, version: e.version, publisher: decision.publisher, indexers: decision.indexers })
  emit(options, 'swarmpack:node:fetch-start', { name: e.name, version: e.version, size: e.size })
  // several packages download at once: the fetcher's events are tagged with theirs (per-package bars)
  const onProgress = options.onProgress
  const tagged = onProgress !== undefined ? { onProgress: (evt: { type: string, detail?: unknown }) => { onProgress(new CustomProgressEvent(evt.type, { ...(evt.detail as object), package: { name: e.name, version: e.version } }) as NodeProgressEvents) } } : {}
  let result
  try {
    result = await ctx.fetcher.fetchDag(manifest, { ...(options.signal !== undefined ? { signal: options.signal } : {}), ...tagged })
  } finally {
    await ctx.afterFetch?.(manifest).catch(() => {})
  }
  totals.network += result.bytes.network
  totals.local += result.bytes.local
  emit(options, 'swarmpack:node:fetched', { name: e.name, version: e.version, bytes: result.bytes, sources: result.sources, ms: result.ms })
}

/** Unpacks one fetched package into its per-root directory (from the local store only). */
async function unpackPackage (ctx: ApplyContext, e: LockEntry, options: ApplyOptions, created: string[]): Promise<InstalledPackage> {
  const manifest = CID.parse(e.manifest)
  const path = ctx.generations.packagePath(e.manifest)
  let entry: string | undefined
  // a per-root directory is immutable: the same root is the same content, so it is reused as is
  const reused = await exists(path)
  if (reused) {
    entry = (await decodeManifest(manifest, storeProvider(ctx.store), options.signal !== undefined ? { signal: options.signal } : {})).entry
  } else {
    const r = await unpack(manifest, storeProvider(ctx.store), path, options.signal !== undefined ? { signal: options.signal } : {})
    created.push(path)
    entry = r.manifest.entry
  }
  emit(options, 'swarmpack:node:unpack', { name: e.name, version: e.version, path, reused })
  const pkg: InstalledPackage = {
    name: e.name,
    version: e.version,
    root: e.manifest,
    release: e.release,
    variant: e.variant,
    path,
    dependencies: Object.keys(e.resolved).sort(),
    size: e.size
  }
  if (entry !== undefined) pkg.entry = entry
  return pkg
}

/** The host side of a switch, shared by apply and rollback. Returns the errors (empty: success). */
async function switchHost (ctx: ApplyContext, rec: JournalRecord, from: Generation | undefined, to: Generation, plan: Pick<Plan, 'load' | 'unload'>, reason: 'apply' | 'rollback', options: ApplyOptions): Promise<void> {
  const errors: unknown[] = []
  const unloaded: string[] = []
  const loaded: string[] = []
  let switched = false
  const step = async (s: ApplyStep): Promise<void> => {
    await ctx.journal.record({ ...rec, step: s })
    emit(options, 'swarmpack:node:step', { step: s, generation: to.number })
  }
  const hook = async (kind: 'load' | 'unload', g: Generation, name: string, why: 'apply' | 'undo' | 'rollback'): Promise<void> => {
    const p = g.packages[name]
    const t0 = Date.now()
    try {
      await runHook(kind, ctx.hooks[kind], hookPackage(p, g.packages), { generation: g.number, reason: why }, ctx.hookTimeoutMs)
      emit(options, 'swarmpack:node:hook', { hook: kind, name, version: p.version, reason: why, ok: true, ms: Date.now() - t0 })
    } catch (err) {
      emit(options, 'swarmpack:node:hook', { hook: kind, name, version: p.version, reason: why, ok: false, ms: Date.now() - t0, error: (err as Error).message })
      throw err
    }
  }
  try {
    if (from !== undefined) for (const name of plan.unload) { await hook('unload', from, name, reason); unloaded.push(name) }
    await step('unloaded')
    await ctx.generations.switchTo(to.number)
    switched = true
    emit(options, 'swarmpack:node:switch', { from: from?.number, to: to.number })
    await step('switched')
    await writeCurrentLock(ctx.dataDir, to.lock)
    for (const name of plan.load) { await hook('load', to, name, reason); loaded.push(name) }
    await step('loaded')
    return
  } catch (err) {
    errors.push(err)
  }
  // undo, collecting every further error: unload what was loaded, switch back, reload the old set
  ;(ctx.log ?? defaultLog).error('%s to generation %d failed, undoing: %s', reason, to.number, (errors[0] as Error)?.message)
  for (const name of loaded.reverse()) {
    try { await hook('unload', to, name, 'undo') } catch (err) { errors.push(err) }
  }
  if (switched) {
    try {
      await ctx.generations.switchTo(from?.number)
      await writeCurrentLock(ctx.dataDir, from?.lock)
      emit(options, 'swarmpack:node:switch', { from: to.number, to: from?.number })
    } catch (err) { errors.push(err) }
  }
  if (from !== undefined) {
    for (const name of from.loadOrder.filter(n => unloaded.includes(n))) {
      try { await hook('load', from, name, 'undo') } catch (err) { errors.push(err) }
    }
  }
  throw nodeError(SwarmpackNodeErrorCode.APPLY_FAILED, `${reason} to generation ${to.number} failed and was undone (generation ${from?.number ?? 'none'} is in force): ${errors.map(e => (e as Error).message).join('; ')}`, {
    errors, generation: from?.number, attempted: to.number
  }, errors[0])
}

/** Keeps the pins equal to the kept generations plus the current lock. */
export async function syncPins (ctx: ApplyContext): Promise<void> {
  const roots: string[] = []
  for (const g of await ctx.generations.list()) roots.push(...generationRoots(g))
  await reconcilePins(ctx.store, roots)
}

export async function applyPlan (ctx: ApplyContext, plan: Plan, options: ApplyOptions = {}): Promise<ApplyResult> {
  const current = await ctx.generations.current()
  if (plan.from !== current?.number) {
    throw nodeError(SwarmpackNodeErrorCode.INVALID_ARGUMENT, `the plan was made against generation ${plan.from ?? 'none'}, but ${current?.number ?? 'none'} is in force now; plan again`, { planned: plan.from, current: current?.number })
  }
  const totals = { network: 0, local: 0 }
  if (options.dryRun === true) return { plan, changed: false, bytes: totals, ...(current !== undefined ? { generation: current.number } : {}) }
  if (plan.empty && current !== undefined && serializeLock(current.lock) === serializeLock(plan.lock)) {
    return { plan, generation: current.number, changed: false, bytes: totals }
  }
  const number = await ctx.generations.nextNumber()
  const rec: JournalRecord = { op: 'apply', to: number, creates: true, step: 'begin', started: Date.now(), ...(current !== undefined ? { from: current.number } : {}) }
  await ctx.journal.record(rec)
  emit(options, 'swarmpack:node:step', { step: 'begin', generation: number })
  let next: Generation
  // package directories this apply creates: removed again if it fails (a failed apply leaves the data dir as it was)
  const created: string[] = []
  const dropBuilt = async (): Promise<void> => {
    await ctx.generations.remove(number).catch(() => {})
    for (const p of created) await rm(p, { recursive: true, force: true }).catch(() => {})
    await ctx.journal.clear()
    await syncPins(ctx).catch(() => {})
  }
  try {
    // pinned before fetching: a partial download is protected from eviction
    await protect(ctx.store, lockRoots(plan.lock))
    const entries = lockEntries(plan.lock)
    await mapLimit(entries, options.concurrency ?? 8, async e => fetchPackage(ctx, e, options, totals))
    await ctx.journal.record({ ...rec, step: 'fetched' })
    emit(options, 'swarmpack:node:step', { step: 'fetched', generation: number })
    const built = await mapLimit(entries, options.concurrency ?? 4, async e => unpackPackage(ctx, e, options, created))
    await ctx.journal.record({ ...rec, step: 'unpacked' })
    emit(options, 'swarmpack:node:step', { step: 'unpacked', generation: number })
    const packages = Object.fromEntries(built.map(p => [p.name, p]))
    next = {
      number,
      created: Date.now(),
      lock: plan.lock,
      packages,
      loadOrder: loadOrder(built.map(p => ({ name: p.name, deps: p.dependencies })))
    }
    await ctx.generations.write(next)
    await ctx.journal.record({ ...rec, step: 'staged' })
    emit(options, 'swarmpack:node:step', { step: 'staged', generation: number })
  } catch (err) {
    // nothing touched the host or `current`: drop what this apply built
    await dropBuilt()
    if (isSwarmpackError(err) && err.code.startsWith('ERR_TRUST_')) {
      throw nodeError(SwarmpackNodeErrorCode.TRUST_REFUSED, `the trust policy refuses a locked release: ${err.message}`, { trustCode: err.code, errors: [err] }, err)
    }
    throw nodeError(SwarmpackNodeErrorCode.APPLY_FAILED, `apply failed before anything was switched (generation ${current?.number ?? 'none'} stays in force): ${(err as Error).message}`, { errors: [err], generation: current?.number }, err)
  }
  try {
    await switchHost(ctx, rec, current, next, plan, 'apply', options)
  } catch (err) {
    await dropBuilt()
    throw err
  }
  await ctx.journal.clear()
  await syncPins(ctx)
  ctx.onInstalled?.(Object.values(next.packages).map(p => CID.parse(p.root)))
  return { plan, generation: number, changed: true, bytes: totals }
}

/** Switches back (or forward) to an existing generation, with the same hook order as apply. */
export async function switchToGeneration (ctx: ApplyContext, target: Generation, plan: Pick<Plan, 'load' | 'unload'>, options: ApplyOptions = {}): Promise<void> {
  const current = await ctx.generations.current()
  for (const p of Object.values(target.packages)) {
    if (!(await exists(p.path))) throw nodeError(SwarmpackNodeErrorCode.GENERATION_NOT_FOUND, `generation ${target.number} lost ${p.name}@${p.version} (${p.path})`, { generation: target.number })
  }
  const rec: JournalRecord = { op: 'rollback', to: target.number, creates: false, step: 'begin', started: Date.now(), ...(current !== undefined ? { from: current.number } : {}) }
  await ctx.journal.record(rec)
  try {
    await switchHost(ctx, rec, current, target, plan, 'rollback', options)
  } finally {
    await ctx.journal.clear()
  }
}
