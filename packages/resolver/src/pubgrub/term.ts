/**
 * A term is a statement about one package: positive "p is selected at a version in S", or negative
 * "p is not selected at a version in S" (which also holds when p is not selected at all).
 */
import { VersionSet } from './version-set.js'

export type Relation = 'subset' | 'disjoint' | 'overlapping'

export class Term {
  readonly name: string
  readonly positive: boolean
  readonly set: VersionSet

  constructor (name: string, set: VersionSet, positive: boolean) {
    this.name = name
    this.set = set
    this.positive = positive
  }

  inverse (): Term {
    return new Term(this.name, this.set, !this.positive)
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

  satisfies (o: Term): boolean {
    return this.relation(o) === 'subset'
  }

  toString (): string {
    return `${this.positive ? '' : 'not '}${this.name} ${this.set.toString()}`
  }
}
