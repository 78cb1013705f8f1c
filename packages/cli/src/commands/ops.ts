/**
 * Operations: `gc`, `verify`, `scrub`, `status`, `doctor`, `mirror export`. Each is one call on the
 * node (issue #12's operations in swarmpack/src/ops); this file only chooses options and prints.
 */
import { resolve } from 'node:path'
import type { DoctorReport, ScrubReport } from 'swarmpack'
import { CliError, type Context } from '../context.js'
import { bytes, duration, table } from '../format.js'
import { parseCid } from '../specs.js'

/** Ctrl-C reaches the node operation. */
function sig (ctx: Context): { signal?: AbortSignal } {
  return ctx.signal !== undefined ? { signal: ctx.signal } : {}
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

export async function gcCmd (ctx: Context, opts: { dryRun?: boolean, keep?: string }): Promise<unknown> {
  const keep = opts.keep !== undefined ? Number(opts.keep) : undefined
  if (keep !== undefined && (!Number.isInteger(keep) || keep < 1)) throw new CliError('ERR_USAGE', `--keep takes a whole number of at least 1, not ${opts.keep}`)
  const node = await ctx.open({ network: false })
  const k = keep !== undefined ? { keep } : {}
  if (opts.dryRun === true) {
    const p = await node.gc({ dryRun: true, ...k, ...sig(ctx) })
    ctx.out.log(`dry run (keep ${p.keep}): would remove generation${p.removedGenerations.length === 1 ? '' : 's'} ${p.removedGenerations.join(', ') || 'none'} and ${plural(p.removedDirs.length, 'package directory', 'package directories')} (${bytes(p.dirBytes)})`)
    ctx.out.print(table([
      ['obsolete versions', `${plural(p.blocks.obsolete.blocks, 'block')}, ${bytes(p.blocks.obsolete.bytes)}`],
      ['other unpinned', `${plural(p.blocks.cache.blocks, 'block')}, ${bytes(p.blocks.cache.bytes)}`],
      ['would free', `${plural(p.blocks.total.blocks, 'block')}, ${bytes(p.blocks.total.bytes)}`],
      ['store', `${bytes(p.store.bytes)} now, ${bytes(p.store.after)} after${p.store.limit !== undefined ? ` (limit ${bytes(p.store.limit)})` : ''}`]
    ]))
    return p
  }
  const r = await node.gc({ ...k, ...sig(ctx) })
  ctx.out.log(`removed generation${r.removedGenerations.length === 1 ? '' : 's'} ${r.removedGenerations.join(', ') || 'none'}, ${plural(r.removedDirs.length, 'package directory', 'package directories')}, ${r.removedBlocks} blocks (${bytes(r.freedBytes)})`)
  return r
}

function printScrub (ctx: Context, r: ScrubReport): void {
  const s = r.store
  ctx.out.log(`store: ${plural(s.checked, 'block')} (${bytes(s.bytes)}) re-hashed, ${s.corrupt.length} corrupt, ${s.refetched.length} fetched again, ${s.unrecoverable.length} unrecoverable`)
  for (const c of s.corrupt) ctx.out.log(`  corrupt ${c.cid}: ${c.reason}`)
  for (const c of s.unrecoverable) ctx.out.log(`  unrecoverable ${c.cid}: ${c.code} ${c.message}`)
  const i = r.installed
  ctx.out.log(`installed: ${plural(i.packages, 'package')}, ${plural(i.files, 'file')} (${bytes(i.bytes)}) checked, ${i.findings.length} changed`)
  for (const f of i.findings) ctx.out.log(`  ${f.name}@${f.version} ${f.path}: ${f.problem}${f.restored ? ', restored' : ''}`)
  for (const e of i.extra) ctx.out.log(`  ${e.name}@${e.version} ${e.path}: not in the manifest (left alone)`)
  for (const u of i.unchecked) ctx.out.log(`  ${u.name}@${u.version}: not checked (${u.code} ${u.message})`)
  if (r.indexes.checked > 0 || r.indexes.findings.length > 0) {
    ctx.out.log(`indexes: ${plural(r.indexes.checked, 'release')} checked against the followed indexes, ${r.indexes.findings.length} findings`)
    for (const f of r.indexes.findings) ctx.out.log(`  ${f.name}@${f.version}: ${f.code} ${f.message}`)
    for (const n of r.indexes.uninstalled) ctx.out.log(`  uninstalled ${n}`)
  }
  ctx.out.log(`${r.ok ? 'ok' : 'NOT OK'} in ${duration(r.ms)}${r.throttledMs > 0 ? ` (${duration(r.throttledMs)} waiting for the read rate limit)` : ''}`)
}

/** The first finding's code, for the exit code: unrecoverable blocks, then corrupt ones, files, releases. */
function scrubFailure (r: ScrubReport): string {
  if (r.store.unrecoverable.length > 0) return 'ERR_BLOCK_UNRECOVERABLE'
  if (r.store.corrupt.length > 0) return 'ERR_BLOCK_CORRUPT'
  if (r.installed.findings.some(f => f.error !== undefined)) return 'ERR_FILE_RESTORE_FAILED'
  if (r.installed.findings.length > 0) return 'ERR_FILE_MODIFIED'
  return r.indexes.findings[0]?.code ?? r.installed.unchecked[0]?.code ?? r.indexes.unchecked[0]?.code ?? 'ERR_SCRUB_FAILED'
}

/**
 * `verify`: the store re-hashed (corrupt blocks removed and, with sources, fetched again) and the
 * installed files compared with their manifests; `--repair` restores changed files. `scrub` adds
 * the releases checked against the followed indexes and uses the config's restore policy.
 */
export async function scrubCmd (ctx: Context, opts: { repair?: boolean, indexes?: boolean, rate?: string }, verifyOnly: boolean): Promise<unknown> {
  const rate = opts.rate !== undefined ? Number(opts.rate) * 1024 * 1024 : undefined
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) throw new CliError('ERR_USAGE', `--rate takes MiB/s greater than 0, not ${opts.rate}`)
  const node = await ctx.open({ network: !verifyOnly })
  const r = await node.scrub({
    ...sig(ctx),
    ...(verifyOnly ? { indexes: false, restore: opts.repair === true } : { indexes: opts.indexes !== false }),
    ...(rate !== undefined ? { rateBytesPerSec: rate } : {})
  })
  printScrub(ctx, r)
  if (!r.ok) {
    const what = [
      r.store.corrupt.length > 0 ? `${plural(r.store.corrupt.length, 'corrupt block')} (removed${r.store.refetched.length > 0 ? `, ${r.store.refetched.length} fetched again` : ''})` : '',
      r.store.unrecoverable.length > 0 ? `${plural(r.store.unrecoverable.length, 'block')} no source could supply` : '',
      r.installed.findings.length > 0 ? `${plural(r.installed.findings.length, 'changed file')} (${r.installed.findings.filter(f => f.restored).length} restored)` : '',
      r.indexes.findings.length > 0 ? `${plural(r.indexes.findings.length, 'release')} revoked or removed upstream` : ''
    ].filter(x => x !== '')
    throw new CliError(scrubFailure(r), `${verifyOnly ? 'verify' : 'scrub'} found ${what.join(', ') || 'problems'}`, { report: r })
  }
  return r
}

export async function statusCmd (ctx: Context, opts: { network?: boolean }): Promise<unknown> {
  const node = await ctx.open({ network: opts.network === true })
  if (opts.network === true && node.peer !== undefined && node.config.sources.bootstrap.length > 0) {
    await node.peer.waitForRoutingTable(1, { timeout: 10_000 }).catch(() => {})
  }
  const s = await node.status()
  const c = s.cache
  const p = s.peer
  const ago = (at?: number): string => at !== undefined ? `${duration(Date.now() - at)} ago` : 'never'
  ctx.out.print(table([
    ['config', ctx.paths.config],
    ['data dir', s.dataDir],
    ['sharing', s.sharing],
    ['peer', p !== undefined ? `${p.id} (${p.connections} connections, ${p.dht.routingTable} in the routing table)` : 'not started (`status --network` starts one)'],
    ['indexers', s.indexers.length === 0 ? 'none followed' : s.indexers.map(i => `${i.id} v${i.version ?? '-'}${i.source !== undefined ? ` from ${i.source}` : ''}${i.error !== undefined ? ` (${i.error})` : ''}`).join(', ')],
    ['generation', String(s.generation ?? 'none')],
    ['packages', s.packages.map(x => `${x.name}@${x.version}${x.lastFetch !== undefined ? ` (${x.lastFetch.sources.map(src => src.source).join('+') || 'store'})` : ''}`).join(' ') || 'none'],
    ['cache', `${bytes(c.bytes)} in ${c.blocks} blocks, ${bytes(c.pinnedBytes)} pinned (${c.pins} pins)${c.limit !== undefined ? `, limit ${bytes(c.limit)}${c.overLimit ? ' (over)' : ''}` : ''}`],
    ['updates', `${s.updates.policy}, last check ${ago(s.updates.lastCheck?.at)}`],
    ['scrub', `last ${ago(s.scrub.last?.at)}`],
    ['errors', s.errors.length === 0 ? 'none' : s.errors.slice(0, 3).map(e => `${e.code} (${e.op}) ${ago(e.at)}`).join('; ')]
  ]))
  return { config: ctx.paths.config, ...s }
}

function printFinding (ctx: Context, f: DoctorReport['findings'][number]): void {
  const mark = f.status === 'ok' ? 'ok  ' : f.status === 'warn' ? 'warn' : f.status === 'fail' ? 'FAIL' : 'skip'
  ctx.out.print(`${mark}  ${f.check}${f.code !== undefined ? ` ${f.code}` : ''}: ${f.message}`)
  if (f.fix !== undefined && f.status !== 'ok') ctx.out.print(`      fix: ${f.fix}`)
}

/** `doctor`: the node's checks (config, store sample, mirrors, heads, clock, peer, DHT, upkeep); non-zero exit when one fails. */
export async function doctorCmd (ctx: Context, opts: { timeout?: string }): Promise<unknown> {
  const timeoutMs = opts.timeout !== undefined ? Number(opts.timeout) * 1000 : undefined
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new CliError('ERR_USAGE', `--timeout takes seconds greater than 0, not ${opts.timeout}`)
  const node = await ctx.open()
  const r = await node.doctor({ ...sig(ctx), ...(timeoutMs !== undefined ? { timeoutMs } : {}) })
  for (const f of r.findings) printFinding(ctx, f)
  if (!r.ok) {
    const failed = r.findings.filter(f => f.status === 'fail')
    throw new CliError(failed[0]?.code ?? 'ERR_UNKNOWN', `${plural(failed.length, 'check')} failed: ${failed.map(f => f.check).join(', ')}`, { report: r })
  }
  return r
}

export async function mirrorExportCmd (ctx: Context, dir: string, opts: { root?: string[] }): Promise<unknown> {
  const node = await ctx.open({ network: false })
  const roots = (opts.root ?? []).map(parseCid)
  const r = await node.exportMirror(resolve(dir), roots.length > 0 ? { roots } : {})
  ctx.out.log(`exported ${r.blocks} blocks (${bytes(r.bytes)}, ${r.written} new) of ${r.roots} roots to ${r.dir}${r.heads.length > 0 ? `; heads of ${r.heads.join(', ')}` : ''}`)
  ctx.out.log('any static web server can serve this directory as a mirror')
  return r
}
