/**
 * The catalog: search and package info over the followed (verified) indexes, answered from the
 * index entries alone (description, categories, tags, versions, variants, sizes, dependencies),
 * so nothing is downloaded before the user picks. Shards are read lazily through the block getter
 * and checked by trust (`IndexView`): `info(name)` reads one shard per index, `search` walks the
 * shards one at a time and keeps only the matches.
 */
import { throwIfAborted } from '@swarmpack/core'
import { IndexView, isTombstone, type GetBlock, type IndexSlot, type ShardEntries, type TrustVerifier } from '@swarmpack/trust'
import type { CID } from 'multiformats/cid'
import semver from 'semver'
import { PublishErrorCode, publishError } from '../publish/errors.js'

/** One followed index: its id and the CID of its (accepted) index envelope, or an opened view. */
export type CatalogSource = { indexer: string, index: CID } | { indexer: string, view: IndexView }

export interface CatalogInit {
  indexes: CatalogSource[]
  /** Reads index and shard blocks (the node's fetcher); every block is checked against its CID. */
  getBlock: GetBlock
}

export interface SearchQuery {
  /** Words that must all appear in the name, description, categories or tags (case-insensitive). */
  text?: string
  /** Exact category (case-insensitive). */
  category?: string
  /** Exact tag (case-insensitive). */
  tag?: string
  /** Most hits returned. Default 50, at most 1000. */
  limit?: number
  /** Consider pre-release versions as the latest. Default false. */
  prerelease?: boolean
  signal?: AbortSignal
}

export interface SearchHit {
  name: string
  /** Newest listed version (pre-releases only when asked, or when there is nothing else). */
  latest: string
  description?: string
  categories: string[]
  tags: string[]
  /** Every listed version, newest first. */
  versions: string[]
  indexers: string[]
}

export interface VariantInfo { key: string, manifest: CID, size: number }

export interface VersionInfo {
  version: string
  /** Set when every index that lists it has withdrawn it. */
  removed?: string
  release?: CID
  /** Byte size of the signed release envelope. */
  releaseSize?: number
  variants: VariantInfo[]
  dependencies: Record<string, string>
  description?: string
  categories: string[]
  tags: string[]
  /** Indexers listing this version (live). */
  indexers: string[]
  /** Indexers listing another release under this version, when they disagree. */
  conflicts?: Array<{ indexer: string, release: CID }>
}

export interface PackageInfo {
  name: string
  latest?: string
  /** Newest first. */
  versions: VersionInfo[]
  indexers: string[]
}

export interface Catalog {
  search: (query: SearchQuery) => Promise<SearchHit[]>
  /** ERR_CATALOG_NOT_FOUND when no followed index knows the name. */
  info: (name: string, options?: { signal?: AbortSignal }) => Promise<PackageInfo>
  readonly indexers: string[]
}

const MAX_QUERY = 256

export function createCatalog (init: CatalogInit): Catalog {
  const views = new Map<string, Promise<IndexView>>()
  const viewOf = async (source: CatalogSource, signal?: AbortSignal): Promise<IndexView> => {
    if ('view' in source) return source.view
    let p = views.get(source.indexer)
    if (p === undefined) {
      p = IndexView.load(source.index, init.getBlock, signal)
      p.catch(() => views.delete(source.indexer))
      views.set(source.indexer, p)
    }
    return await p
  }

  const info = async (name: string, options: { signal?: AbortSignal } = {}): Promise<PackageInfo> => {
    const { signal } = options
    if (typeof name !== 'string' || name.length === 0 || name.length > 214) throw publishError(PublishErrorCode.CATALOG_QUERY, 'a package name is needed')
    const perIndex: Array<[string, Map<string, IndexSlot>]> = []
    for (const source of init.indexes) {
      throwIfAborted(signal)
      const versions = await (await viewOf(source, signal)).versions(name, signal)
      if (versions !== undefined) perIndex.push([source.indexer, versions])
    }
    if (perIndex.length === 0) throw publishError(PublishErrorCode.CATALOG_NOT_FOUND, `no followed index lists ${name}`, { name, indexers: init.indexes.map(s => s.indexer) })
    const byVersion = new Map<string, VersionInfo>()
    for (const [indexer, versions] of perIndex) {
      for (const [version, slot] of versions) {
        const seen = byVersion.get(version)
        if (isTombstone(slot)) {
          if (seen === undefined) byVersion.set(version, { version, removed: slot.removed, variants: [], dependencies: {}, categories: [], tags: [], indexers: [] })
          continue
        }
        if (seen === undefined || seen.release === undefined) {
          byVersion.set(version, {
            version,
            release: slot.release,
            releaseSize: slot.size,
            variants: Object.entries(slot.variants).map(([key, v]) => ({ key, manifest: v.manifest, size: v.size })).sort((a, b) => a.key < b.key ? -1 : 1),
            dependencies: slot.dependencies,
            ...(slot.description !== undefined ? { description: slot.description } : {}),
            categories: slot.categories ?? [],
            tags: slot.tags ?? [],
            indexers: [indexer]
          })
        } else if (seen.release.equals(slot.release)) {
          seen.indexers.push(indexer)
        } else {
          (seen.conflicts ??= []).push({ indexer, release: slot.release })
        }
      }
    }
    const versions = [...byVersion.values()].sort((a, b) => semver.rcompare(a.version, b.version))
    const latest = pickLatest(versions.filter(v => v.removed === undefined).map(v => v.version), false)
    return { name, ...(latest !== undefined ? { latest } : {}), versions, indexers: perIndex.map(([i]) => i) }
  }

  const search = async (query: SearchQuery): Promise<SearchHit[]> => {
    const { signal } = query
    const terms = normalise(query.text, 'text').split(/\s+/).filter(t => t !== '')
    const category = normalise(query.category, 'category')
    const tag = normalise(query.tag, 'tag')
    const limit = query.limit ?? 50
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw publishError(PublishErrorCode.CATALOG_QUERY, 'limit must be between 1 and 1000')
    const hits = new Map<string, SearchHit & { score: number }>()
    for (const source of init.indexes) {
      const view = await viewOf(source, signal)
      for (let bucket = 0; bucket < view.root.shards.length; bucket++) {
        throwIfAborted(signal)
        const shard: ShardEntries = await view.shard(bucket, signal)
        for (const [name, versions] of shard) {
          const live = [...versions].filter((e): e is [string, Exclude<IndexSlot, { removed: string }>] => !isTombstone(e[1]))
          if (live.length === 0) continue
          const latest = pickLatest(live.map(([v]) => v), query.prerelease === true)!
          const entry = live.find(([v]) => v === latest)![1]
          const cats = entry.categories ?? []
          const tags = entry.tags ?? []
          if (category !== '' && !cats.some(c => c.toLowerCase() === category)) continue
          if (tag !== '' && !tags.some(t => t.toLowerCase() === tag)) continue
          const score = scoreOf(terms, name, entry.description ?? '', cats, tags)
          if (score < 0) continue
          const prev = hits.get(name)
          if (prev !== undefined) {
            prev.indexers.push(source.indexer)
            prev.versions = [...new Set([...prev.versions, ...live.map(([v]) => v)])].sort(semver.rcompare)
            if (semver.gt(latest, prev.latest)) Object.assign(prev, { latest, categories: cats, tags, ...(entry.description !== undefined ? { description: entry.description } : {}) })
            continue
          }
          hits.set(name, {
            name, latest, categories: cats, tags, versions: live.map(([v]) => v).sort(semver.rcompare), indexers: [source.indexer], score,
            ...(entry.description !== undefined ? { description: entry.description } : {})
          })
        }
      }
    }
    return [...hits.values()]
      .sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : 1))
      .slice(0, limit)
      .map(({ score: _s, ...hit }) => hit)
  }

  return { search, info, get indexers () { return init.indexes.map(s => s.indexer) } }
}

function normalise (value: string | undefined, what: string): string {
  if (value === undefined) return ''
  if (typeof value !== 'string' || value.length > MAX_QUERY) throw publishError(PublishErrorCode.CATALOG_QUERY, `${what} must be a string of at most ${MAX_QUERY} characters`)
  return value.trim().toLowerCase()
}

/** Newest version; pre-releases only when asked or when there is nothing else. */
function pickLatest (versions: string[], prerelease: boolean): string | undefined {
  const sorted = [...versions].sort(semver.rcompare)
  return (prerelease ? sorted[0] : sorted.find(v => semver.prerelease(v) === null)) ?? sorted[0]
}

/**
 * -1 when a term is missing; otherwise higher for matches in the name (exact > prefix > inside)
 * than in tags, categories or the description.
 */
function scoreOf (terms: string[], name: string, description: string, categories: string[], tags: string[]): number {
  const n = name.toLowerCase()
  const d = description.toLowerCase()
  const labels = [...categories, ...tags].map(l => l.toLowerCase())
  let score = 0
  for (const t of terms) {
    if (n === t || n.endsWith(`/${t}`)) score += 100
    else if (n.startsWith(t) || n.includes(`/${t}`)) score += 50
    else if (n.includes(t)) score += 30
    else if (labels.includes(t)) score += 20
    else if (labels.some(l => l.includes(t))) score += 10
    else if (d.includes(t)) score += 5
    else return -1
  }
  return score
}

/**
 * The catalog of what a trust verifier follows: every followed indexer's accepted index (none yet:
 * left out). `getBlock` reads index and shard blocks (the node's fetcher).
 */
export async function catalogFromVerifier (verifier: TrustVerifier, getBlock: GetBlock): Promise<Catalog> {
  const indexes: CatalogSource[] = []
  for (const ix of verifier.policy.policy.indexers) {
    const st = await verifier.state.read(ix.id)
    if (st !== undefined) indexes.push({ indexer: ix.id, index: st.index })
  }
  return createCatalog({ indexes, getBlock })
}
