/**
 * The packages waiting for a decision, ordered by the decision heuristic, without rescanning all
 * of them at every decision: a binary heap of (priority, count, name) entries that are pushed
 * whenever what is known about a package changes, and skipped when they have gone stale.
 */
export interface Candidate {
  name: string
  /** Lower first: 0 for packages being updated, 1 otherwise. */
  priority: number
  /** Lower first: how many usable versions are still allowed. */
  count: number
  /** The package's change stamp when this entry was pushed. */
  stamp: number
}

function before (a: Candidate, b: Candidate): boolean {
  if (a.priority !== b.priority) return a.priority < b.priority
  if (a.count !== b.count) return a.count < b.count
  return a.name < b.name
}

export class CandidateQueue {
  private readonly heap: Candidate[] = []

  get size (): number { return this.heap.length }

  push (c: Candidate): void {
    const h = this.heap
    h.push(c)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(h[i], h[parent])) break
      const t = h[i]; h[i] = h[parent]; h[parent] = t
      i = parent
    }
  }

  /** The best entry for which `valid` holds, dropping stale ones on the way; it stays queued. */
  peek (valid: (c: Candidate) => boolean): Candidate | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0]
      if (valid(top)) return top
      this.pop()
    }
    return undefined
  }

  /** Drops every entry for which `valid` fails and rebuilds the heap (O(n)). */
  compact (valid: (c: Candidate) => boolean): void {
    const kept = this.heap.filter(valid)
    this.heap.length = 0
    for (const c of kept) this.heap.push(c)
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i)
  }

  private pop (): void {
    const h = this.heap
    const last = h.pop() as Candidate
    if (h.length === 0) return
    h[0] = last
    this.siftDown(0)
  }

  private siftDown (i: number): void {
    const h = this.heap
    for (;;) {
      const l = 2 * i + 1; const r = l + 1
      let m = i
      if (l < h.length && before(h[l], h[m])) m = l
      if (r < h.length && before(h[r], h[m])) m = r
      if (m === i) return
      const t = h[i]; h[i] = h[m]; h[m] = t
      i = m
    }
  }
}
