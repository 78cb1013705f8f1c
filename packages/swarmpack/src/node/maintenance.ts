/**
 * Maintenance operations of the node: the store-only `verify()` and `mirror export`. Thin wrappers
 * over the block store and core's mirror layout; `gc({ dryRun })`, scrub and doctor are in ../ops.
 */
import { exportMirror, writeMirrorIndexHead, type FsBlockstore } from '@swarmpack/core'
import { openIndexRoot, type TrustVerifier } from '@swarmpack/trust'
import { CID } from 'multiformats/cid'
import type { DeploymentConfig } from '../config/schema.js'
import type { Generations } from '../apply/generations.js'

export interface VerifyReport {
  checked: number
  /** Blocks that failed their hash check (removed from the store; fetched again when needed). */
  corrupt: Array<{ cid: string, reason: string }>
  /** Blocks pinned roots reach that the store lacks. */
  missingPinned: string[]
  ok: boolean
}

export async function verifyStore (store: FsBlockstore, options: { signal?: AbortSignal, onProgress?: (evt: any) => void }): Promise<VerifyReport> {
  const r = await store.verify(options)
  const corrupt = r.corrupt.map(c => ({ cid: c.cid.toString(), reason: c.reason }))
  const missingPinned = r.missingPinned.map(c => c.toString())
  return { checked: r.checked, corrupt, missingPinned, ok: corrupt.length === 0 && missingPinned.length === 0 }
}

export interface MirrorExportOptions {
  /** Roots to export (default: every root the node pins, and the indexes it follows). */
  roots?: CID[]
  /** Signed index heads to publish beside the blocks (indexer id -> head bytes); the followed ones are added. */
  heads?: Record<string, Uint8Array>
  signal?: AbortSignal
  onProgress?: (evt: any) => void
}

export interface MirrorExport {
  dir: string
  roots: number
  blocks: number
  written: number
  bytes: number
  heads: string[]
}

export async function exportNodeMirror (store: FsBlockstore, verifier: TrustVerifier | undefined, config: DeploymentConfig, dir: string, options: MirrorExportOptions = {}): Promise<MirrorExport> {
  const roots = new Map<string, CID>()
  const add = (c: CID): void => { roots.set(c.toString(), c) }
  const heads: Record<string, Uint8Array> = { ...options.heads }
  if (options.roots !== undefined) {
    options.roots.forEach(add)
  } else {
    for (const p of store.pins()) add(p.root)
    for (const ix of config.indexers) {
      const st = await verifier?.state.read(ix.id)
      if (st === undefined) continue
      add(st.index)
      heads[ix.id] ??= st.head
    }
  }
  // an index names its shards inside its signed payload, not as links: export them as roots too
  for (const c of [...roots.values()]) {
    if (c.code !== 0x71 || !store.has(c)) continue
    try {
      for (const s of openIndexRoot(await store.getBytes(c)).shards) add(s)
    } catch { /* not an index */ }
  }
  const report = await exportMirror(store, [...roots.values()], dir, { ...(options.signal !== undefined ? { signal: options.signal } : {}), ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}) })
  for (const [id, bytes] of Object.entries(heads)) await writeMirrorIndexHead(dir, id, bytes)
  return { dir, roots: roots.size, blocks: report.blocks, written: report.written, bytes: report.bytes, heads: Object.keys(heads).sort() }
}
