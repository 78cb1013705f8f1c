/**
 * What the provider learned about mirrors per package root: which served blocks of it (hits) and
 * which answered 404 for some (misses). For the rest of that package, mirrors that lacked it are
 * asked last, so a mirror without the package costs about one request per package rather than one
 * per block. A mirror not yet known either way gets one request for the package at a time until it
 * answers, so concurrent blocks do not all try it first (the user's order of preference holds once
 * it has answered). Mirrors that answered 404 to the CAR request for the root (a static mirror
 * without that CAR, or a gateway without the package) are not asked for that CAR again. Kept for a
 * while (a mirror may sync later), for a bounded number of roots.
 */
export interface RootRecord<M> {
  hits: Set<M>
  misses: Set<M>
  /** Answered 404 to the CAR request for this root. */
  noCar: Set<M>
  /** Neither hit nor miss yet, with a first request in flight: other blocks go elsewhere meanwhile. */
  pending: Set<M>
  at: number
}

export class RootMemory<M> {
  private readonly roots = new Map<string, RootRecord<M>>()

  constructor (private readonly maxRoots = 1024, private readonly ttlMs = 10 * 60_000) {}

  /** What is known about `root` (undefined when nothing, or when it is too old). */
  get (root: string, now = Date.now()): RootRecord<M> | undefined {
    const entry = this.roots.get(root)
    if (entry === undefined) return undefined
    if (now - entry.at > this.ttlMs) { this.roots.delete(root); return undefined }
    return entry
  }

  hit (root: string, mirror: M): void {
    this.entry(root).hits.add(mirror)
  }

  miss (root: string, mirror: M): void {
    this.entry(root).misses.add(mirror)
  }

  noCar (root: string, mirror: M): void {
    this.entry(root).noCar.add(mirror)
  }

  /** The record for `root`, created if needed. */
  entry (root: string, now = Date.now()): RootRecord<M> {
    let entry = this.get(root, now)
    if (entry === undefined) {
      entry = { hits: new Set(), misses: new Set(), noCar: new Set(), pending: new Set(), at: now }
      this.roots.set(root, entry)
      // Oldest first in insertion order: drop it when full.
      if (this.roots.size > this.maxRoots) this.roots.delete(this.roots.keys().next().value as string)
    }
    return entry
  }
}
