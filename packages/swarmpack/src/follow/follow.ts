/**
 * Following indexers: for each followed indexer, find its newest head, have trust verify it (and
 * the index it names) and move the persisted state forward; then report, per indexer, the index
 * the node resolves against (id, version, root).
 * INTERIM head reading (directories and mirrors, `indexes/<id>/head`) until src/heads lands.
 */
import { FsProvider, isSwarmpackError } from '@swarmpack/core'
import { openIndexHead, type TrustVerifier } from '@swarmpack/trust'
import { request } from 'undici'
import type { DeploymentConfig } from '../config/schema.js'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import type { FollowedIndex } from '../resolve/index-source.js'

export interface FollowReport {
  indexer: string
  version?: number
  changed: boolean
  source?: string
  /** Why no newer head was taken (every source's answer). */
  errors: Array<{ source: string, code: string, message: string }>
}

async function candidates (config: DeploymentConfig, id: string): Promise<Array<{ bytes: Uint8Array, source: string }>> {
  const ix = config.indexers.find(i => i.id === id)
  const out: Array<{ bytes: Uint8Array, source: string }> = []
  for (const dir of [...(ix?.heads.directories ?? []), ...config.sources.directories.map(d => d.path)]) {
    try {
      const p = await FsProvider.open(dir)
      out.push({ bytes: await p.getIndexHead(id), source: `dir:${dir}` })
    } catch { /* a miss */ }
  }
  for (const base of [...(ix?.heads.mirrors ?? []), ...config.sources.mirrors.map(m => m.url)]) {
    try {
      const url = new URL(`indexes/${id}/head`, base.endsWith('/') ? base : base + '/')
      const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 })
      if (res.statusCode !== 200) { await res.body.dump(); continue }
      out.push({ bytes: new Uint8Array(await res.body.arrayBuffer()), source: `mirror:${base}` })
    } catch { /* a miss */ }
  }
  return out
}

export async function followIndexers (config: DeploymentConfig, verifier: TrustVerifier, options: { signal?: AbortSignal } = {}): Promise<FollowReport[]> {
  const reports: FollowReport[] = []
  for (const ix of config.indexers) {
    const report: FollowReport = { indexer: ix.id, changed: false, errors: [] }
    const found = await candidates(config, ix.id)
    const versioned = found.map(c => { try { return { ...c, version: openIndexHead(c.bytes).version } } catch { return { ...c, version: -1 } } })
    versioned.sort((a, b) => b.version - a.version)
    for (const c of versioned) {
      try {
        const r = await verifier.updateIndexer(ix.id, c.bytes, options.signal !== undefined ? { signal: options.signal } : {})
        report.version = r.version
        report.changed = r.changed
        report.source = c.source
        break
      } catch (err) {
        if (!isSwarmpackError(err)) throw err
        report.errors.push({ source: c.source, code: err.code, message: err.message })
      }
    }
    reports.push(report)
  }
  return reports
}

/** The index each followed indexer currently stands at (from trust's persisted state). */
export async function followedIndexes (config: DeploymentConfig, verifier: TrustVerifier): Promise<FollowedIndex[]> {
  const out: FollowedIndex[] = []
  const missing: string[] = []
  for (const ix of config.indexers) {
    const st = await verifier.state.read(ix.id)
    if (st === undefined) missing.push(ix.id)
    else out.push({ id: ix.id, version: st.version, root: st.index })
  }
  if (out.length === 0 || out.length < config.trust.indexerThreshold) {
    throw nodeError(SwarmpackNodeErrorCode.INDEX_UNAVAILABLE, `no accepted head for indexer${missing.length === 1 ? '' : 's'} ${missing.join(', ')}: follow found none of their heads`, { missing })
  }
  return out
}
