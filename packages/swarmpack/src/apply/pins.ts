/**
 * Pins: the blocks of every kept generation and of the lock stay in the store (gc and LRU
 * eviction skip them), and the sharing node announces pinned roots, so what is installed is also
 * served. One pin per root, named `swarmpack:<cid>`, so the set is reconciled by name; pins under
 * other names (the host's own) are left alone.
 */
import { CID } from 'multiformats/cid'
import type { FsBlockstore } from '@swarmpack/core'
import { openIndexRoot } from '@swarmpack/trust'
import type { Lockfile } from '../lock/format.js'
import type { Generation } from './generations.js'

const PREFIX = 'swarmpack:'

export function lockRoots (lock: Lockfile): string[] {
  return [
    ...Object.values(lock.packages).flatMap(p => [p.manifest, p.release]),
    ...lock.indexes.map(ix => ix.root)
  ]
}

export function generationRoots (g: Generation): string[] {
  return [...Object.values(g.packages).flatMap(p => [p.root, p.release]), ...lockRoots(g.lock)]
}

/**
 * The shards of the indexes a lock was resolved against: the signed index names them inside its
 * payload (not as links), so they are pinned one by one, which also has them announced: peers that
 * follow the same index find its shards at this node.
 */
export async function indexShardRoots (store: FsBlockstore, lock: Lockfile): Promise<string[]> {
  const out: string[] = []
  for (const ix of lock.indexes) {
    const cid = CID.parse(ix.root)
    if (!store.has(cid)) continue
    try {
      out.push(...openIndexRoot(await store.getBytes(cid)).shards.map(s => s.toString()))
    } catch { /* not an index we can read: nothing more to keep */ }
  }
  return out
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
