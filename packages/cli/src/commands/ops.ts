/**
 * Operations: `gc`, `verify`, `status`, `doctor`, `mirror export`. Thin over what the node offers
 * today (generations, the store's gc and verify, trust state, the mirror export); issue #12's richer
 * node methods (scrub, diagnostics, cache policy) slot in behind the same commands.
 */
import { access, constants, mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { loadConfigFile, type Swarmpack } from 'swarmpack'
import { CliError, exists, type Context } from '../context.js'
import { errorReport } from '../output.js'
import { bytes, table } from '../format.js'
import { parseCid } from '../specs.js'

export async function gcCmd (ctx: Context, opts: { dryRun?: boolean, keep?: string }): Promise<unknown> {
  const keep = opts.keep !== undefined ? Number(opts.keep) : undefined
  if (keep !== undefined && (!Number.isInteger(keep) || keep < 1)) throw new CliError('ERR_USAGE', `--keep takes a whole number of at least 1, not ${opts.keep}`)
  const node = await ctx.open({ network: false })
  if (opts.dryRun === true) {
    const p = await node.gcPreview(keep !== undefined ? { keep } : {})
    ctx.out.log(`dry run: would remove generation${p.removedGenerations.length === 1 ? '' : 's'} ${p.removedGenerations.join(', ') || 'none'} and ${p.removedDirs.length} package director${p.removedDirs.length === 1 ? 'y' : 'ies'}`)
    ctx.out.log(`  the store holds ${bytes(p.store.bytes)} in ${p.store.blocks} blocks (${p.store.pins} pins); unpinned blocks are removed when gc runs`)
    return p
  }
  const r = await node.gc(keep !== undefined ? { keep } : {})
  ctx.out.log(`removed generation${r.removedGenerations.length === 1 ? '' : 's'} ${r.removedGenerations.join(', ') || 'none'}, ${r.removedDirs.length} package director${r.removedDirs.length === 1 ? 'y' : 'ies'}, ${r.removedBlocks} blocks (${bytes(r.freedBytes)})`)
  return r
}

export async function verifyCmd (ctx: Context): Promise<unknown> {
  const node = await ctx.open({ network: false })
  const r = await node.verify()
  ctx.out.log(`checked ${r.checked} blocks: ${r.corrupt.length} corrupt (removed), ${r.missingPinned.length} missing under pinned roots`)
  for (const c of r.corrupt) ctx.out.log(`  corrupt ${c.cid}: ${c.reason}`)
  if (!r.ok) {
    throw new CliError('ERR_CORRUPT_BLOCK', `the store had ${r.corrupt.length} corrupt block(s) (removed) and lacks ${r.missingPinned.length} block(s) under pinned roots; \`swarmpack install\` fetches them again`, { report: r })
  }
  return r
}

async function statusOf (ctx: Context, node: Swarmpack): Promise<Record<string, unknown>> {
  const g = await node.current()
  const indexers = await Promise.all(node.config.indexers.map(async ix => {
    const st = await node.verifier.state.read(ix.id)
    return { id: ix.id, keys: ix.keys, version: st?.version ?? null, index: st?.index.toString() ?? null, updated: st?.updated ?? null }
  }))
  const peer = node.peer
  return {
    config: ctx.paths.config,
    dataDir: ctx.paths.dataDir,
    sharing: node.config.sharing,
    peer: peer !== undefined ? { id: peer.peerId.toString(), addresses: peer.multiaddrs().map(String), connections: peer.libp2p.getConnections().length, routingTable: peer.routingTableSize() } : null,
    indexers,
    generation: g?.number ?? null,
    packages: g === undefined ? [] : Object.values(g.packages).map(p => ({ name: p.name, version: p.version, size: p.size })),
    wanted: node.config.modules,
    store: node.store.stats(),
    recovery: node.recovery ?? null,
    keys: (await (await ctx.keys()).list().catch(() => [])).map(k => ({ name: k.name, id: k.id }))
  }
}

export async function statusCmd (ctx: Context, opts: { network?: boolean }): Promise<unknown> {
  const node = await ctx.open({ network: opts.network === true })
  if (opts.network === true && node.peer !== undefined && node.config.sources.bootstrap.length > 0) {
    await node.peer.waitForRoutingTable(1, { timeout: 10_000 }).catch(() => {})
  }
  const s = await statusOf(ctx, node)
  const ix = s.indexers as Array<{ id: string, version: number | null }>
  const st = s.store as { bytes: number, blocks: number, pins: number, maxSize?: number }
  const peer = s.peer as { id: string, connections: number, routingTable: number } | null
  ctx.out.print(table([
    ['config', String(s.config)],
    ['data dir', String(s.dataDir)],
    ['sharing', String(s.sharing)],
    ['peer', peer !== null ? `${peer.id} (${peer.connections} connections, ${peer.routingTable} in the routing table)` : 'not started (`status --network` starts one)'],
    ['indexers', ix.length === 0 ? 'none followed' : ix.map(i => `${i.id} v${i.version ?? '-'}`).join(', ')],
    ['generation', String(s.generation ?? 'none')],
    ['packages', (s.packages as Array<{ name: string, version: string }>).map(p => `${p.name}@${p.version}`).join(' ') || 'none'],
    ['store', `${bytes(st.bytes)} in ${st.blocks} blocks, ${st.pins} pins${st.maxSize !== undefined ? `, limit ${bytes(st.maxSize)}` : ''}`]
  ]))
  return s
}

interface Check { check: string, ok: boolean, detail: string, code?: string, hint?: string }

/** Checks the config, the data dir, the keys, and that each indexer's head can be read now. */
export async function doctorCmd (ctx: Context): Promise<unknown> {
  const checks: Check[] = []
  const record = (check: string, ok: boolean, detail: string, err?: unknown): void => {
    const c: Check = { check, ok, detail }
    if (err !== undefined) { const r = errorReport(err); c.code = r.code; c.hint = r.hint }
    checks.push(c)
    ctx.out.log(`${ok ? 'ok  ' : 'FAIL'}  ${check}: ${detail}`)
  }
  let config
  try {
    config = await loadConfigFile(ctx.paths.config)
    record('config', true, `${ctx.paths.config}: valid (${config.indexers.length} indexers, ${Object.keys(config.modules).length} modules)`)
  } catch (err) {
    record('config', false, (err as Error).message, (await exists(ctx.paths.config)) ? err : new CliError('ERR_CONFIG_NOT_FOUND', 'missing'))
  }
  try {
    await mkdir(ctx.paths.dataDir, { recursive: true })
    await access(ctx.paths.dataDir, constants.W_OK)
    record('data dir', true, `${ctx.paths.dataDir} is writable`)
  } catch (err) {
    record('data dir', false, `${ctx.paths.dataDir}: ${(err as Error).message}`, err)
  }
  const keys = await (await ctx.keys()).list().catch(() => [])
  record('keys', true, keys.length === 0 ? 'none (only needed to publish, index or attest)' : keys.map(k => `${k.name} ${k.id}`).join(', '))
  if (config !== undefined) {
    if (config.indexers.length === 0) record('indexers', false, 'no indexer followed', new CliError('ERR_INDEX_UNAVAILABLE', 'no indexer followed'))
    let node: Swarmpack | undefined
    try {
      node = await ctx.open()
      const reports = await node.follow()
      for (const r of reports) {
        if (r.error !== undefined) record(`indexer ${r.indexer}`, false, `${r.error.code}: ${r.error.message}`, r.error)
        else record(`indexer ${r.indexer}`, true, `head version ${r.version} from ${r.source}`)
      }
      if (node.peer !== undefined) {
        const boot = config.sources.bootstrap.length
        if (boot > 0) await node.peer.waitForRoutingTable(1, { timeout: 10_000 }).catch(() => {})
        const conns = node.peer.libp2p.getConnections().length
        record('swarm', boot === 0 || conns > 0, `${conns} connections, ${node.peer.routingTableSize()} peers in the routing table${boot === 0 ? ' (no bootstrap peers configured)' : ''}`,
          boot > 0 && conns === 0 ? new CliError('ERR_DHT_NO_PROVIDERS', 'no bootstrap peer answered') : undefined)
      }
      const v = await node.verify()
      record('store', v.ok, `${v.checked} blocks checked, ${v.corrupt.length} corrupt, ${v.missingPinned.length} missing under pins`, v.ok ? undefined : new CliError('ERR_CORRUPT_BLOCK', 'store damaged'))
    } catch (err) {
      record('node', false, `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`, err)
    }
  }
  const failed = checks.filter(c => !c.ok)
  if (failed.length > 0) {
    const first = failed[0]
    throw new CliError(first.code ?? 'ERR_UNKNOWN', `${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map(c => c.check).join(', ')}`, { checks })
  }
  return { ok: true, checks }
}

export async function mirrorExportCmd (ctx: Context, dir: string, opts: { root?: string[] }): Promise<unknown> {
  const node = await ctx.open({ network: false })
  const roots = (opts.root ?? []).map(parseCid)
  const r = await node.exportMirror(resolve(dir), roots.length > 0 ? { roots } : {})
  ctx.out.log(`exported ${r.blocks} blocks (${bytes(r.bytes)}, ${r.written} new) of ${r.roots} roots to ${r.dir}${r.heads.length > 0 ? `; heads of ${r.heads.join(', ')}` : ''}`)
  ctx.out.log('any static web server can serve this directory as a mirror')
  return r
}
