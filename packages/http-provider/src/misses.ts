/**
 * Which mirrors lack a package: a mirror that answered 404 for a package's root or any of its
 * blocks is asked after the others for the rest of that package, so a mirror without the package
 * costs one request per package rather than one per block. Remembered per root for a while (a
 * mirror may sync later), for a bounded number of roots.
 */
export class RootMisses<M> {
  private readonly roots = new Map<string, { mirrors: Set<M>, at: number }>()

  constructor (private readonly maxRoots = 1024, private readonly ttlMs = 10 * 60_000) {}

  /** Mirrors that missed a block of `root` lately (undefined when none). */
  get (root: string, now = Date.now()): ReadonlySet<M> | undefined {
    const entry = this.roots.get(root)
    if (entry === undefined) return undefined
    if (now - entry.at > this.ttlMs) { this.roots.delete(root); return undefined }
    return entry.mirrors
  }

  add (root: string, mirror: M, now = Date.now()): void {
    let entry = this.roots.get(root)
    if (entry === undefined || now - entry.at > this.ttlMs) {
      this.roots.delete(root)
      entry = { mirrors: new Set(), at: now }
      this.roots.set(root, entry)
      // Oldest first in insertion order: drop it when full.
      if (this.roots.size > this.maxRoots) this.roots.delete(this.roots.keys().next().value as string)
    }
    entry.mirrors.add(mirror)
  }
}
