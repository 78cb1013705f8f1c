/**
 * Pins: the blocks of every kept generation and of the lock stay in the store (gc and LRU
 * eviction skip them), and the sharing node announces pinned roots, so what is installed is also
 * served. One pin per root, named `swarmpack:<cid>`, so the set is reconciled by name; pins under
 * other names (the host's own) are left alone.
 */
import { CID } from 'multiformats/cid'
import type { FsBlockstore } from '@swarmpack/core'
import type { Lockfile } from '../lock/format.js'
import type { Generation } from './generations.js'

const PREFIX = 'swarmpack:'

/**
 * What a lock keeps: each package's manifest and release, and the index envelopes it was resolved
 * against. Not the index shards: a shard links every release and manifest it lists, so pinning it
 * would keep the whole index's packages; followers find shards through the index's providers
 * (the fetcher's per-root hint, see node.ts).
 */
export function lockRoots (lock: Lockfile): string[] {
  return [
    ...Object.values(lock.packages).flatMap(p => [p.manifest, p.release]),
    ...lock.indexes.map(ix => ix.root)
  ]
}

export function generationRoots (g: Generation): string[] {
  return [...Object.values(g.packages).flatMap(p => [p.root, p.release]), ...lockRoots(g.lock)]
}

/** Pins these roots (missing ones are pinned before their blocks arrive, which protects partial downloads). */
export async function protect (store: FsBlockstore, roots: Iterable<string>): Promise<void> {
  const have = new Set(store.pins().map(p => p.name))
  for (const r of new Set(roots)) if (!have.has(PREFIX + r)) await store.pin(PREFIX + r, CID.parse(r))
}

/** Makes the node's pins exactly `roots`; returns the roots that were unpinned. */
export async function reconcilePins (store: FsBlockstore, roots: Iterable<string>): Promise<string[]> {
  const wanted = new Set(roots)
  await protect(store, wanted)
  const removed: string[] = []
  for (const { name } of store.pins()) {
    if (!name.startsWith(PREFIX)) continue
    const root = name.slice(PREFIX.length)
    if (!wanted.has(root)) {
      await store.unpin(name)
      removed.push(root)
    }
  }
  return removed
}
