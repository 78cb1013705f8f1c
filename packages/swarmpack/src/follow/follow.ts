/**
 * Following indexers: for each followed indexer, read its newest head from every source the
 * config names (the DHT, mirrors, mirror directories: src/heads), have trust verify it and the
 * index it names and move the persisted state forward; then report, per indexer, the index the
 * node resolves against (id, version, root). An indexer no source answers for keeps the head
 * accepted before; that is reported, not thrown.
 */
import { isSwarmpackError } from '@swarmpack/core'
import type { SwarmpackPeer } from '@swarmpack/dht-provider'
import type { TrustVerifier } from '@swarmpack/trust'
import type { Dispatcher } from 'undici'
import type { DeploymentConfig } from '../config/schema.js'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import { followIndexHead } from '../heads/read.js'
import type { HeadSource } from '../heads/sources.js'
import type { FollowedIndex } from '../resolve/index-source.js'

export interface FollowReport {
  indexer: string
  /** Version accepted now (the earlier one when nothing newer was found). */
  version?: number
  changed: boolean
  source?: string
  /** What went wrong (no head anywhere, or the heads found were refused: trust's code). */
  error?: { code: string, message: string }
}

export interface FollowContext {
  config: DeploymentConfig
  verifier: TrustVerifier
  peer?: SwarmpackPeer
  dispatcher?: Dispatcher
  signal?: AbortSignal
  onProgress?: (evt: any) => void
  timeoutMs?: number
}

function headSources (ctx: FollowContext, id: string): HeadSource[] {
  const ix = ctx.config.indexers.find(i => i.id === id)
  const out: HeadSource[] = []
  // a DHT with an empty routing table cannot answer: asking it would only wait out the timeout
  if (ctx.peer !== undefined && ix?.heads.dht !== false && ctx.peer.routingTableSize() > 0) out.push({ kind: 'dht', dht: ctx.peer.dht })
  for (const url of new Set([...(ix?.heads.mirrors ?? []), ...ctx.config.sources.mirrors.filter(m => m.kind === 'mirror').map(m => m.url)])) out.push({ kind: 'mirror', url })
  for (const path of new Set([...(ix?.heads.directories ?? []), ...ctx.config.sources.directories.map(d => d.path)])) out.push({ kind: 'dir', path })
  return out
}

export async function followIndexers (ctx: FollowContext): Promise<FollowReport[]> {
  // just after start the bootstrap peers may still be joining: give the routing table a moment
  if (ctx.peer !== undefined && ctx.peer.routingTableSize() === 0 && ctx.config.sources.bootstrap.length > 0 && ctx.config.indexers.some(ix => ix.heads.dht)) {
    await ctx.peer.waitForRoutingTable(1, { timeout: 3000, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) }).catch(() => {})
  }
  return Promise.all(ctx.config.indexers.map(async (ix): Promise<FollowReport> => {
    const sources = headSources(ctx, ix.id)
    try {
      if (sources.length === 0) throw nodeError(SwarmpackNodeErrorCode.INDEX_UNAVAILABLE, `no head source configured for indexer ${ix.id}`)
      const r = await followIndexHead(ctx.verifier, ix.id, {
        sources,
        timeoutMs: ctx.timeoutMs ?? 15_000,
        ...(ctx.dispatcher !== undefined ? { dispatcher: ctx.dispatcher } : {}),
        ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
        ...(ctx.onProgress !== undefined ? { onProgress: ctx.onProgress } : {})
      })
      return { indexer: ix.id, version: r.update.version, changed: r.update.changed, source: r.source }
    } catch (err) {
      if (!isSwarmpackError(err) || err.code === 'ERR_ABORTED') throw err
      const st = await ctx.verifier.state.read(ix.id)
      return { indexer: ix.id, changed: false, error: { code: err.code, message: err.message }, ...(st !== undefined ? { version: st.version } : {}) }
    }
  }))
}

/** The index each followed indexer currently stands at (from trust's persisted state). */
export async function followedIndexes (config: DeploymentConfig, verifier: TrustVerifier, last: FollowReport[] = []): Promise<FollowedIndex[]> {
  const out: FollowedIndex[] = []
  const missing: string[] = []
  if (config.indexers.length === 0) throw nodeError(SwarmpackNodeErrorCode.INDEX_UNAVAILABLE, 'no indexer followed: the deployment config lists no indexers', { missing, follow: last })
  for (const ix of config.indexers) {
    const st = await verifier.state.read(ix.id)
    if (st === undefined) missing.push(ix.id)
    else out.push({ id: ix.id, version: st.version, root: st.index })
  }
  if (out.length === 0 || out.length < config.trust.indexerThreshold) {
    const why = last.filter(r => missing.includes(r.indexer) && r.error !== undefined).map(r => `${r.indexer}: ${r.error?.code} ${r.error?.message}`)
    throw nodeError(SwarmpackNodeErrorCode.INDEX_UNAVAILABLE, `no accepted head for indexer${missing.length === 1 ? '' : 's'} ${missing.join(', ')}${why.length > 0 ? ` (${why.join('; ')})` : ''}`, { missing, follow: last })
  }
  return out
}
