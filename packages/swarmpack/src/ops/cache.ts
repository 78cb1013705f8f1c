/**
 * Cache policy (S5, P6). The store keeps what the kept generations and the current lock pin; the
 * rest is cache. `gc({ dryRun: true })` reports what a gc would remove and how many bytes, split
 * into obsolete versions (blocks only generations beyond `generations.keep` use) and other
 * unpinned cache. When the store grows over `cache.maxSize`, the policy pass removes generations
 * beyond `keep` and evicts the blocks of those obsolete versions first, then other unpinned
 * blocks least recently used first, until the store fits; what is pinned is never evicted (if
 * the pinned set alone is over the limit, doctor says so: ERR_CACHE_OVER_LIMIT).
 */
import { rm } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import { blockLinks, isSwarmpackError, loadManifest, RAW_CODEC, throwIfAborted, type FsBlockstore } from '@swarmpack/core'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import type { Generation } from '../apply/generations.js'
import { generationRoots } from '../apply/pins.js'
import { syncPins } from '../apply/apply.js'
import type { OpsHost } from './host.js'

const NODE_PIN = 'swarmpack:'

/** Store key of a CID (the store is keyed by multihash). */
const keyOf = (cid: CID): string => Buffer.from(cid.multihash.bytes).toString('base64')

export interface BlockSet { blocks: Map<string, { cid: CID, size: number }>, bytes: number }

/**
 * The blocks present in the store that `roots` reach, with their sizes. Package roots are read as
 * manifests (chunk sizes come from the manifest, so chunks are not read); other roots are walked
 * through their dag-cbor links.
 */
export async function reachable (store: FsBlockstore, roots: Iterable<string>, manifests: Set<string>, signal?: AbortSignal): Promise<BlockSet> {
  const out: BlockSet = { blocks: new Map(), bytes: 0 }
  const add = (cid: CID, size: number): void => {
    const k = keyOf(cid)
    if (out.blocks.has(k) || !store.has(cid)) return
    out.blocks.set(k, { cid, size })
    out.bytes += size
  }
  const local = { get: async (cid: CID) => store.getBytes(cid, { touch: false }) }
  const queue: CID[] = []
  for (const r of new Set(roots)) {
    throwIfAborted(signal)
    const root = CID.parse(r)
    if (manifests.has(r)) {
      try {
        const { manifest, manifestBlocks } = await loadManifest(root, local, signal !== undefined ? { signal } : {})
        for (const b of manifestBlocks) add(b, (await store.getBytes(b, { touch: false })).byteLength)
        for (const e of manifest.entries) if (e.type === 'file') for (const [c, size] of e.chunks) add(c, size)
        continue
      } catch (err) {
        if (isSwarmpackError(err, 'ERR_ABORTED')) throw err
        // manifest incomplete locally: count what is there by walking links
      }
    }
    queue.push(root)
  }
  const seen = new Set<string>()
  while (queue.length > 0) {
    throwIfAborted(signal)
    const cid = queue.pop() as CID
    const k = keyOf(cid)
    if (seen.has(k)) continue
    seen.add(k)
    if (!store.has(cid)) continue
    if (cid.code === RAW_CODEC && out.blocks.has(k)) continue
    let bytes: Uint8Array
    try { bytes = await store.getBytes(cid, { touch: false }) } catch { continue }
    add(cid, bytes.byteLength)
    for (const c of blockLinks(cid, bytes)) queue.push(c)
  }
  return out
}

export interface GcSelection {
  current?: number
  removedGenerations: number[]
  kept: Generation[]
  removed: Generation[]
  removedDirs: string[]
}

/** Which generations a gc keeping `keep` (the current one included) removes, and which package dirs go with them. */
export async function selectGenerations (host: OpsHost, keep: number): Promise<GcSelection> {
  if (!Number.isInteger(keep) || keep < 1) throw nodeError(SwarmpackNodeErrorCode.INVALID_ARGUMENT, `keep must be a whole number of at least 1 (the current generation always stays), not ${keep}`)
  const gens = host.node.generations
  const current = await gens.currentNumber()
  const all = await gens.list()
  const others = all.filter(g => g.number !== current)
  const keptNumbers = new Set(others.slice(Math.max(0, others.length - (keep - (current !== undefined ? 1 : 0)))).map(g => g.number))
  if (current !== undefined) keptNumbers.add(current)
  const kept = all.filter(g => keptNumbers.has(g.number))
  const removed = all.filter(g => !keptNumbers.has(g.number))
  return { ...(current !== undefined ? { current } : {}), removedGenerations: removed.map(g => g.number), kept, removed, removedDirs: await gens.unusedPackageDirs(kept) }
}

/** Roots pinned after a gc: the kept generations (as syncPins pins them) and pins the node does not own. */
async function keptRoots (store: FsBlockstore, kept: Generation[]): Promise<{ roots: string[], manifests: Set<string> }> {
  const roots: string[] = []
  const manifests = new Set<string>()
  for (const g of kept) {
    roots.push(...generationRoots(g))
    for (const p of Object.values(g.lock.packages)) manifests.add(p.manifest)
  }
  for (const p of store.pins()) if (!p.name.startsWith(NODE_PIN)) roots.push(p.root.toString())
  return { roots, manifests }
}

export interface GcDryRun {
  dryRun: true
  keep: number
  /** Generations that would be removed (never the current one). */
  removedGenerations: number[]
  /** Package directories only those generations use, and their bytes (the packages' sizes). */
  removedDirs: string[]
  dirBytes: number
  /** Blocks and bytes that would leave the store. */
  blocks: {
    /** Blocks of versions only the removed generations use: evicted first by the cache policy. */
    obsolete: { blocks: number, bytes: number }
    /** Other unpinned blocks (fetched for resolution, served, older versions collected before). */
    cache: { blocks: number, bytes: number }
    total: { blocks: number, bytes: number }
  }
  /** The store now, and what stays pinned. */
  store: { bytes: number, blocks: number, limit?: number, pinnedBytes: number, after: number }
}

/** Blocks the kept generations reach (`stay`) and blocks the generations beyond `keep` reach (`going`). */
async function keptAndGoing (store: OpsHost['node']['store'], sel: Awaited<ReturnType<typeof selectGenerations>>, signal?: AbortSignal): Promise<{ stay: Awaited<ReturnType<typeof reachable>>, going: Awaited<ReturnType<typeof reachable>> }> {
  const { roots, manifests } = await keptRoots(store, sel.kept)
  const stay = await reachable(store, roots, manifests, signal)
  const goingRoots: string[] = []
  const goingManifests = new Set<string>()
  for (const g of sel.removed) {
    goingRoots.push(...generationRoots(g))
    for (const p of Object.values(g.lock.packages)) goingManifests.add(p.manifest)
  }
  return { stay, going: await reachable(store, goingRoots, goingManifests, signal) }
}

export async function gcDryRun (host: OpsHost, keep: number, signal?: AbortSignal): Promise<GcDryRun> {
  const store = host.node.store
  const sel = await selectGenerations(host, keep)
  const { stay, going } = await keptAndGoing(store, sel, signal)
  let obsoleteBlocks = 0
  let obsoleteBytes = 0
  for (const [k, b] of going.blocks) if (!stay.blocks.has(k)) { obsoleteBlocks++; obsoleteBytes += b.size }
  const s = store.stats()
  const totalBlocks = s.blocks - stay.blocks.size
  const totalBytes = s.bytes - stay.bytes
  const dirRoots = new Set(sel.removedDirs.map(d => d.split('/').pop() as string))
  let dirBytes = 0
  const counted = new Set<string>()
  for (const g of sel.removed) for (const p of Object.values(g.packages)) if (dirRoots.has(p.root) && !counted.has(p.root)) { counted.add(p.root); dirBytes += p.size }
  return {
    dryRun: true,
    keep,
    removedGenerations: sel.removedGenerations,
    removedDirs: sel.removedDirs,
    dirBytes,
    blocks: {
      obsolete: { blocks: obsoleteBlocks, bytes: obsoleteBytes },
      cache: { blocks: Math.max(0, totalBlocks - obsoleteBlocks), bytes: Math.max(0, totalBytes - obsoleteBytes) },
      total: { blocks: totalBlocks, bytes: totalBytes }
    },
    store: { bytes: s.bytes, blocks: s.blocks, ...(Number.isFinite(s.maxSize) ? { limit: s.maxSize } : {}), pinnedBytes: stay.bytes, after: stay.bytes }
  }
}

export interface CachePassReport {
  /** Over the limit before the pass? */
  over: boolean
  removedGenerations: number[]
  obsolete: { blocks: number, bytes: number }
  lru: { blocks: number, bytes: number }
  bytes: number
  limit?: number
  /** Still over the limit with only pinned blocks left. */
  stillOver: boolean
}

/** The policy pass: nothing unless the store is over `cache.maxSize`; then obsolete versions first, then LRU. */
export async function enforceCachePolicy (host: OpsHost, signal?: AbortSignal): Promise<CachePassReport> {
  const { node } = host
  const store = node.store
  const limit = node.config.cache.maxSize
  const before = store.stats()
  const report: CachePassReport = { over: false, removedGenerations: [], obsolete: { blocks: 0, bytes: 0 }, lru: { blocks: 0, bytes: 0 }, bytes: before.bytes, stillOver: false, ...(limit !== undefined ? { limit } : {}) }
  if (limit === undefined || before.bytes <= limit) return report
  report.over = true
  return host.exclusive(async () => {
    const sel = await selectGenerations(host, node.config.generations.keep)
    // 1. versions only the generations beyond `keep` use: the generations go, then their blocks
    const { stay, going } = await keptAndGoing(store, sel, signal)
    for (const n of sel.removedGenerations) await node.generations.remove(n)
    for (const d of sel.removedDirs) await rm(d, { recursive: true, force: true })
    report.removedGenerations = sel.removedGenerations
    if (sel.removedGenerations.length > 0) await syncPins(nodeApplyContext(host))
    for (const [k, b] of going.blocks) {
      if (stay.blocks.has(k) || store.stats().bytes <= limit) continue
      throwIfAborted(signal)
      await store.delete(b.cid)
      report.obsolete.blocks++
      report.obsolete.bytes += b.size
    }
    // 2. the rest, least recently used first
    if (store.stats().bytes > limit) {
      const r = await store.gc({ targetSize: limit, ...(signal !== undefined ? { signal } : {}) })
      report.lru = { blocks: r.removedBlocks, bytes: r.removedBytes }
    }
    report.bytes = store.stats().bytes
    report.stillOver = report.bytes > limit
    host.log.write(report.stillOver ? 'warn' : 'info', 'cache:policy', { ...report })
    return report
  })
}

/** The parts of the node's apply context syncPins reads. */
function nodeApplyContext (host: OpsHost): Parameters<typeof syncPins>[0] {
  return { store: host.node.store, generations: host.node.generations } as unknown as Parameters<typeof syncPins>[0]
}
