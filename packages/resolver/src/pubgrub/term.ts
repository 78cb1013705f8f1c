/**
 * A term is a statement about one package: positive "p is selected at a version in S", or negative
 * "p is not selected at a version in S" (which also holds when p is not selected at all).
 */
import { VersionSet } from './version-set.js'
import type { Version } from './version.js'

export type Relation = 'subset' | 'disjoint' | 'overlapping'

export class Term {
  readonly name: string
  readonly positive: boolean
  readonly set: VersionSet
  /**
   * Set by the partial solution on an accumulated term: the accumulated term it narrowed (this =
   * narrowedFrom ∩ one more assignment). Lets `relationFrom` reuse a final answer for an ancestor.
   */
  narrowedFrom: Term | undefined = undefined
  /**
   * Single-entry memo of `acc.relation(this)` for the last `acc` asked about. Unit propagation
   * checks the same incompatibility terms against the same or barely changed accumulated terms
   * again and again; both are immutable, so the memo is exact (and harmless when terms are shared
   * by solvers).
   */
  private inv: Term | undefined = undefined
  private countLists: readonly Version[] | undefined = undefined
  private countValue = 0
  private meetPrev: Term | undefined = undefined
  private meet: Term | undefined = undefined
  private memoAcc: Term | undefined = undefined
  private memoRel: Relation = 'overlapping'

  constructor (name: string, set: VersionSet, positive: boolean) {
    this.name = name
    this.set = set
    this.positive = positive
  }

  /** `acc.relation(this)`, remembered for the last `acc`. */
  relationFrom (acc: Term): Relation {
    const memo = this.memoAcc
    if (memo === acc) return this.memoRel
    // 'subset' and 'disjoint' survive narrowing (a non-empty subset of what was inside or outside
    // o still is), so an answer for an ancestor of acc holds for acc
    if (memo !== undefined && this.memoRel !== 'overlapping' && !acc.isEmpty()) {
      let a = acc.narrowedFrom
      for (let k = 0; a !== undefined && k < 8; k++, a = a.narrowedFrom) {
        if (a === memo) { this.memoAcc = acc; return this.memoRel }
      }
    }
    const r = acc.relation(this)
    this.memoAcc = acc
    this.memoRel = r
    return r
  }

  inverse (): Term {
    // kept: the same facts are derived from again after every backjump
    if (this.inv === undefined) {
      this.inv = new Term(this.name, this.set, !this.positive)
      this.inv.inv = this
    }
    return this.inv
  }

  /**
   * `prev.intersect(this)`, remembered for the last `prev`: after a backjump the same assignments
   * are made again on the same accumulated terms, and getting the same objects back keeps the
   * relation memos valid and the garbage low.
   */
  narrow (prev: Term): Term {
    if (this.meetPrev === prev) return this.meet as Term
    const meet = prev.intersect(this)
    meet.narrowedFrom = prev
    this.meetPrev = prev
    this.meet = meet
    return meet
  }

  /** A positive term no version can satisfy. */
  isEmpty (): boolean {
    return this.positive && this.set.isEmpty()
  }

  /** The term that holds when both this and `o` (same package) hold. */
  intersect (o: Term): Term {
    if (this.positive && o.positive) return new Term(this.name, this.set.intersect(o.set), true)
    if (this.positive) return new Term(this.name, this.set.difference(o.set), true)
    if (o.positive) return new Term(this.name, o.set.difference(this.set), true)
    return new Term(this.name, this.set.union(o.set), false)
  }

  /** The term that holds when this holds and `o` does not. */
  difference (o: Term): Term {
    return this.intersect(o.inverse())
  }

  /**
   * How this term (what is known, e.g. the partial solution) relates to `o`: every way of meeting
   * this meets `o` (subset), none does (disjoint), or some do (overlapping).
   */
  relation (o: Term): Relation {
    const single = this.set.single
    if (this.positive && single !== undefined) {
      // a decided version: the question is only whether o's set holds it
      const inside = o.set.contains(single)
      return o.positive === inside ? 'subset' : 'disjoint'
    }
    if (o.positive) {
      if (this.positive) {
        if (!this.set.intersects(o.set)) return 'disjoint'
        return this.set.subsetOf(o.set) ? 'subset' : 'overlapping'
      }
      // "not S" excludes all of o only if S covers o; it is never a subset (the package may be absent)
      return o.set.subsetOf(this.set) ? 'disjoint' : 'overlapping'
    }
    if (this.positive) {
      if (!this.set.intersects(o.set)) return 'subset'
      return this.set.subsetOf(o.set) ? 'disjoint' : 'overlapping'
    }
    return o.set.subsetOf(this.set) ? 'subset' : 'overlapping'
  }

  /**
   * `set.countIn(releases, prereleases)`, remembered for the last lists asked about (the same
   * accumulated terms come back after backjumps and are counted again for the decision heuristic).
   */
  countIn (releases: readonly Version[], prereleases: readonly Version[]): number {
    if (this.countLists !== releases) {
      this.countValue = this.set.countIn(releases, prereleases)
      this.countLists = releases
    }
    return this.countValue
  }

  satisfies (o: Term): boolean {
    return this.relation(o) === 'subset'
  }

  toString (): string {
    return `${this.positive ? '' : 'not '}${this.name} ${this.set.toString()}`
  }
}
