/**
 * The client side: `follow`, `resolve`, `install`/`apply`, `uninstall`, `update`, `rollback`,
 * `generations`, `list`. Each is one or two calls on the node; what is printed comes from the
 * node's events (the progress view) and its results.
 */
import { writeFile } from 'node:fs/promises'
import { resolve as resolvePath } from 'node:path'
import { followIndexerConfig, readIndexerCard, serializeLock, specFromCard, type ApplyResult, type FollowReport, type FollowSpec, type Plan, type PlanChange, type RecentError, type UpdateAvailable } from 'swarmpack'
import { CliError, exists, type Context } from '../context.js'
import { bytes, shortId, table } from '../format.js'
import { splitSpec } from '../specs.js'

/** Ctrl-C reaches the node operation. */
function sig (ctx: Context): { signal?: AbortSignal } {
  return ctx.signal !== undefined ? { signal: ctx.signal } : {}
}

function followLines (ctx: Context, reports: FollowReport[]): void {
  for (const r of reports) {
    if (r.error !== undefined && r.version === undefined) ctx.out.warn(`indexer ${r.indexer}: ${r.error.code} ${r.error.message}`)
  }
}

export interface FollowOptions {
  key?: string[]
  id?: string
  mirror?: string[]
  dir?: string[]
  publisherRoot?: string[]
  peer?: string[]
  follow?: boolean
}

/**
 * `follow <mirror url | mirror dir>` reads the indexer card there; `follow <indexer id> --key …`
 * takes everything from flags. Either way the config file gets the indexer, then the node follows it.
 */
export async function followCmd (ctx: Context, source: string, opts: FollowOptions): Promise<unknown> {
  await ctx.requireConfig()
  let spec: FollowSpec
  // an indexer id with --key, unless a directory of that name exists here
  const manual = /^[A-Za-z0-9_-]{1,128}$/.test(source) && (opts.key ?? []).length > 0 && !(await exists(source))
  if (manual) {
    spec = { indexer: source, keys: opts.key ?? [] }
  } else {
    const card = await readIndexerCard(source)
    spec = specFromCard(card, source)
    const pinned = opts.key ?? []
    if (pinned.length > 0) {
      const missing = pinned.filter(k => !card.keys.includes(k))
      if (missing.length > 0) throw new CliError('ERR_TRUST_MISMATCH', `the indexer card at ${source} names key ${card.keys.join(', ')}, not ${missing.join(', ')}: refusing to follow`, { card: card.keys, expected: pinned })
    } else {
      ctx.out.warn(`trusting indexer ${card.indexer} key ${card.keys.join(', ')} from ${source} on first use; check it out of band (or pass --key)`)
    }
  }
  if (opts.id !== undefined) spec.indexer = opts.id
  if ((opts.mirror ?? []).length > 0) spec.mirrors = [...(spec.mirrors ?? []), ...(opts.mirror ?? [])]
  if ((opts.dir ?? []).length > 0) spec.directories = [...(spec.directories ?? []), ...(opts.dir ?? []).map(d => resolvePath(d))]
  if ((opts.publisherRoot ?? []).length > 0) spec.publishers = [...(spec.publishers ?? []), { pattern: '*', roots: opts.publisherRoot ?? [] }]
  if ((opts.peer ?? []).length > 0) spec.peers = [...(spec.peers ?? []), ...(opts.peer ?? [])]
  await followIndexerConfig(ctx.paths.config, spec)
  ctx.out.log(`following indexer ${spec.indexer} (key ${spec.keys.map(k => shortId(k)).join(', ')}) in ${ctx.paths.config}`)
  if (opts.follow === false) return { indexer: spec.indexer, spec }
  const node = await ctx.open()
  const reports = await node.follow(sig(ctx))
  const mine = reports.find(r => r.indexer === spec.indexer)
  if (mine?.error !== undefined && mine.version === undefined) {
    throw new CliError(mine.error.code, `indexer ${spec.indexer} was added to the config, but no valid head was found yet: ${mine.error.message}`, { indexer: spec.indexer })
  }
  return { indexer: spec.indexer, spec, follow: reports }
}

function planSummary (plan: Plan): unknown {
  return { changes: plan.changes, load: plan.load, unload: plan.unload, bytes: plan.bytes, empty: plan.empty }
}

function printPlan (ctx: Context, plan: Plan): void {
  const rows = plan.changes.map(c => [
    c.action === 'add' ? '+' : c.action === 'remove' ? '-' : c.action === 'replace' ? '~' : '=',
    c.name,
    c.action === 'replace' ? `${c.from?.version} -> ${c.to?.version}` : (c.to ?? c.from)?.version ?? '',
    c.to !== undefined ? bytes(c.to.size) : '',
    c.action === 'unchanged' || c.action === 'remove' ? '' : `${bytes(c.fetchBytes)} to fetch`
  ])
  if (rows.length > 0) ctx.out.print(table(rows))
  ctx.out.print(plan.empty ? 'nothing to change' : `${bytes(plan.bytes.fetch)}${plan.bytes.exact ? '' : ' at most'} to download of ${bytes(plan.bytes.total)}`)
}

/** Resolves and prints the plan; writes the lockfile only with --write. */
export async function resolveCmd (ctx: Context, opts: { write?: string | boolean, update?: string[] | boolean, follow?: boolean }): Promise<unknown> {
  const node = await ctx.open({ network: opts.follow !== false })
  if (opts.follow !== false) followLines(ctx, await node.follow(sig(ctx)))
  const update = opts.update === true ? true : Array.isArray(opts.update) && opts.update.length > 0 ? opts.update : undefined
  const lock = await node.resolve({ ...sig(ctx), ...(update !== undefined ? { update } : {}) })
  const plan = await node.plan(lock)
  printPlan(ctx, plan)
  let written: string | undefined
  if (opts.write !== undefined && opts.write !== false) {
    written = typeof opts.write === 'string' ? resolvePath(opts.write) : ctx.paths.lock
    await writeFile(written, serializeLock(lock))
    ctx.out.log(`wrote ${written}`)
  }
  return { lock, plan: planSummary(plan), ...(written !== undefined ? { written } : {}) }
}

function summarize (ctx: Context, r: ApplyResult, dryRun: boolean): unknown {
  ctx.view.stop()
  const changed = r.plan.changes.filter(c => c.action !== 'unchanged')
  if (dryRun) {
    printPlan(ctx, r.plan)
    ctx.out.log('dry run: nothing was changed')
  } else if (!r.changed) {
    ctx.out.log(`nothing to change (generation ${r.generation ?? 'none'})`)
  } else {
    const what = changed.map(c => c.action === 'add' ? `+${c.name}@${c.to?.version}` : c.action === 'remove' ? `-${c.name}@${c.from?.version}` : `~${c.name} ${c.from?.version}->${c.to?.version}`)
    ctx.out.log(`generation ${r.generation}: ${what.join(' ')}`)
    ctx.out.log(ctx.view.sourcesLine())
  }
  return {
    changed: r.changed,
    dryRun,
    generation: r.generation ?? null,
    plan: planSummary(r.plan),
    bytes: { ...r.bytes, peers: ctx.view.summary.bytes.peers, mirrors: ctx.view.summary.bytes.mirrors },
    packages: ctx.view.summary.packages,
    hooks: ctx.view.summary.hooks
  }
}

export interface InstallOptions { frozen?: boolean, lock?: string, dryRun?: boolean, follow?: boolean }

export async function installCmd (ctx: Context, specs: string[], opts: InstallOptions): Promise<unknown> {
  if (opts.frozen === true && specs.length > 0) throw new CliError('ERR_USAGE', '--frozen installs exactly the lockfile: name no packages (edit the config and `swarmpack resolve --write` instead)')
  const node = await ctx.open()
  if (opts.follow !== false && opts.frozen !== true) followLines(ctx, await node.follow(sig(ctx)))
  const dryRun = opts.dryRun === true
  let r: ApplyResult
  if (specs.length > 0) {
    const modules = Object.fromEntries(specs.map(s => { const { name, range } = splitSpec(s); return [name, range] }))
    r = await node.install(modules, { dryRun, ...sig(ctx) })
  } else {
    const lock = opts.frozen === true ? resolvePath(opts.lock ?? ctx.paths.lock) : undefined
    r = await node.apply(undefined, { dryRun, ...sig(ctx), ...(opts.frozen === true ? { frozen: true, lock } : {}) })
  }
  return summarize(ctx, r, dryRun)
}

export async function uninstallCmd (ctx: Context, names: string[], opts: { dryRun?: boolean }): Promise<unknown> {
  const node = await ctx.open()
  const r = await node.uninstall(names, { dryRun: opts.dryRun === true, ...sig(ctx) })
  return summarize(ctx, r, opts.dryRun === true)
}

export async function updateCmd (ctx: Context, names: string[], opts: { dryRun?: boolean, watch?: boolean, interval?: string }, signal: AbortSignal): Promise<unknown> {
  const node = await ctx.open()
  if (opts.watch !== true) {
    const r = await node.update(names, { dryRun: opts.dryRun === true, ...sig(ctx) })
    return summarize(ctx, r, opts.dryRun === true)
  }
  // watch: the node's update watcher (follow, resolve within the ranges, apply per policy) until interrupted
  if (names.length > 0) throw new CliError('ERR_USAGE', 'update --watch updates every wanted module: name no packages')
  const everyMs = Number(opts.interval ?? '300') * 1000
  if (!Number.isFinite(everyMs) || everyMs < 1000) throw new CliError('ERR_USAGE', `--interval takes seconds (at least 1), not ${opts.interval}`)
  const policy = opts.dryRun === true ? 'notify' : 'apply'
  const events: Array<{ event: string, detail: unknown }> = []
  const record = (event: string, detail: unknown): void => { events.push({ event, detail }); ctx.out.event(event, detail) }
  const changeText = (changes: PlanChange[]): string => changes.map(c => c.action === 'add' ? `+${c.name}@${c.to?.version}` : c.action === 'remove' ? `-${c.name}@${c.from?.version}` : `~${c.name} ${c.from?.version}->${c.to?.version}`).join(' ')
  const onAvailable = (e: CustomEvent<UpdateAvailable>): void => {
    const u = e.detail
    ctx.out.log(`update available: ${changeText(u.changes)} (${u.decision}${u.windowOpens !== undefined ? `, window opens ${new Date(u.windowOpens).toISOString()}` : ''})`)
    record('update:available', { changes: u.changes, indexes: u.indexes, decision: u.decision, ...(u.windowOpens !== undefined ? { windowOpens: u.windowOpens } : {}), plan: planSummary(u.plan) })
  }
  const onApplied = (e: CustomEvent<{ result: ApplyResult, changes: PlanChange[] }>): void => {
    ctx.out.log(`generation ${e.detail.result.generation}: ${changeText(e.detail.changes)}`)
    record('update:applied', { generation: e.detail.result.generation ?? null, changes: e.detail.changes, bytes: e.detail.result.bytes })
  }
  const onFailed = (e: CustomEvent<{ error: RecentError }>): void => {
    ctx.out.warn(`update failed (${e.detail.error.code}): ${e.detail.error.message}; trying again in ${everyMs / 1000} s`)
    record('update:failed', { error: e.detail.error })
  }
  node.events.addEventListener('update:available', onAvailable)
  node.events.addEventListener('update:applied', onApplied)
  node.events.addEventListener('update:failed', onFailed)
  ctx.out.log(`watching the followed indexes every ${everyMs / 1000} s, policy ${policy} (Ctrl-C stops)`)
  // one check now (its events print as above), then the node's watcher every interval
  await node.checkUpdates({ apply: true, policy, signal }).catch(() => {})
  const stop = node.watchUpdates({ policy, intervalMs: everyMs })
  // the node's watcher timer does not hold the process open (a host's own work does): this command does, until Ctrl-C
  const keepAlive = setInterval(() => {}, 1 << 30)
  try {
    if (!signal.aborted) await new Promise<void>(resolve => { signal.addEventListener('abort', () => { resolve() }, { once: true }) })
  } finally {
    clearInterval(keepAlive)
    await stop()
    node.events.removeEventListener('update:available', onAvailable)
    node.events.removeEventListener('update:applied', onApplied)
    node.events.removeEventListener('update:failed', onFailed)
  }
  return { watch: true, policy, intervalMs: everyMs, events }
}

export async function rollbackCmd (ctx: Context, generation: string | undefined): Promise<unknown> {
  const node = await ctx.open({ network: false })
  const gens = await node.listGenerations()
  const cur = gens.find(g => g.current)
  let target: number
  if (generation !== undefined) {
    target = Number(generation)
    if (!Number.isInteger(target) || target < 1) throw new CliError('ERR_USAGE', `not a generation number: ${generation}`)
  } else {
    const before = gens.filter(g => cur === undefined || g.number < cur.number).at(-1)
    if (before === undefined) throw new CliError('ERR_GENERATION_NOT_FOUND', `no generation before ${cur?.number ?? 'none'} to roll back to`)
    target = before.number
  }
  await node.rollback(target)
  ctx.view.stop()
  ctx.out.log(`rolled back to generation ${target}${cur !== undefined ? ` (was ${cur.number})` : ''}`)
  return { from: cur?.number ?? null, to: target }
}

export async function generationsCmd (ctx: Context): Promise<unknown> {
  const node = await ctx.open({ network: false })
  const gens = await node.listGenerations()
  if (gens.length === 0) ctx.out.log('no generations yet')
  ctx.out.print(table(gens.map(g => [g.current ? '*' : ' ', String(g.number), new Date(g.created).toISOString(), g.packages.map(p => `${p.name}@${p.version}`).join(' ')])))
  return { generations: gens }
}

export async function listCmd (ctx: Context): Promise<unknown> {
  const node = await ctx.open({ network: false })
  const g = await node.current()
  const packages = g === undefined ? [] : g.loadOrder.map(n => g.packages[n]).map(p => ({ name: p.name, version: p.version, variant: p.variant, size: p.size, root: p.root, path: p.path, dependencies: p.dependencies }))
  if (packages.length === 0) ctx.out.log('nothing installed')
  ctx.out.print(table(packages.map(p => [`${p.name}@${p.version}`, p.variant, bytes(p.size), p.path])))
  return { generation: g?.number ?? null, packages, wanted: node.config.modules }
}
