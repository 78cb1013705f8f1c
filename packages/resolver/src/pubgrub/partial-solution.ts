/**
 * The partial solution: the ordered list of assignments (decisions and derivations) made so far,
 * with, per package, what all its assignments together say.
 */
import { Term, type Relation } from './term.js'
import { VersionSet } from './version-set.js'
import type { Incompatibility } from './incompatibility.js'
import type { Version } from './version.js'

/** One term per decided version object: backjumps make the same decisions again. */
const decisionTerms = new WeakMap<Version, Term>()

/** The positive term "name at exactly version", the same object each time. */
export function decisionTerm (name: string, version: Version): Term {
  let term = decisionTerms.get(version)
  if (term === undefined || term.name !== name) {
    term = new Term(name, VersionSet.exact(version), true)
    decisionTerms.set(version, term)
  }
  return term
}

export interface Assignment {
  readonly term: Term
  /** Number of decisions made when this was assigned (the root decision is level 1). */
  readonly level: number
  /** Position in the assignment list. */
  readonly index: number
  /** The incompatibility it was derived from; null for a decision. */
  readonly cause: Incompatibility | null
  /** The intersection of this package's assignments up to and including this one. */
  readonly accumulated: Term
}

interface PackageState {
  assignments: Assignment[]
  /** The last assignment's accumulated term (kept here so lookups skip the array). */
  acc: Term | undefined
  decision: Version | undefined
}

export class PartialSolution {
  readonly assignments: Assignment[] = []
  private readonly packages = new Map<string, PackageState>()
  private decisions = 0
  /** Packages with a positive accumulated term and no decision yet: the candidates to decide next. */
  readonly pending = new Set<string>()
  /** Bumped on every change of any package's accumulated term (used to cache per-package work). */
  private readonly onChange: (name: string) => void

  constructor (onChange: (name: string) => void = () => {}) {
    this.onChange = onChange
  }

  get level (): number {
    return this.decisions
  }

  decisionOf (name: string): Version | undefined {
    return this.packages.get(name)?.decision
  }

  /** What is known about a package: the intersection of its assignments, or undefined if none. */
  accumulated (name: string): Term | undefined {
    return this.packages.get(name)?.acc
  }

  /** The package's last assignment (its accumulated term is what is known now). */
  latest (name: string): Assignment | undefined {
    const s = this.packages.get(name)
    return s === undefined || s.assignments.length === 0 ? undefined : s.assignments[s.assignments.length - 1]
  }

  decide (name: string, version: Version): void {
    this.decisions++
    this.assign(decisionTerm(name, version), null)
    ;(this.packages.get(name) as PackageState).decision = version
    this.pending.delete(name)
  }

  derive (term: Term, cause: Incompatibility): void {
    this.assign(term, cause)
  }

  private assign (term: Term, cause: Incompatibility | null): void {
    let s = this.packages.get(term.name)
    if (s === undefined) {
      s = { assignments: [], acc: undefined, decision: undefined }
      this.packages.set(term.name, s)
    }
    const prev = s.acc
    const accumulated = prev === undefined ? term : term.narrow(prev)
    s.acc = accumulated
    const a: Assignment = { term, level: this.decisions, index: this.assignments.length, cause, accumulated }
    this.assignments.push(a)
    s.assignments.push(a)
    if (accumulated.positive && s.decision === undefined) this.pending.add(term.name)
    this.onChange(term.name)
  }

  /** Undo every assignment made after decision level `level`. */
  backtrack (level: number): void {
    const touched = new Set<string>()
    while (this.assignments.length > 0 && this.assignments[this.assignments.length - 1].level > level) {
      const a = this.assignments.pop() as Assignment
      const s = this.packages.get(a.term.name) as PackageState
      s.assignments.pop()
      s.acc = s.assignments.length === 0 ? undefined : s.assignments[s.assignments.length - 1].accumulated
      if (a.cause === null) s.decision = undefined
      touched.add(a.term.name)
    }
    this.decisions = level
    for (const name of touched) {
      const s = this.packages.get(name) as PackageState
      const acc = s.acc
      if (acc !== undefined && acc.positive && s.decision === undefined) this.pending.add(name)
      else this.pending.delete(name)
      this.onChange(name)
    }
  }

  /** How the solution relates to a term; a package without assignments leaves any term open. */
  relation (term: Term): Relation {
    const acc = this.packages.get(term.name)?.acc
    if (acc === undefined) return 'overlapping'
    return term.relationFrom(acc)
  }

  satisfies (term: Term): boolean {
    return this.relation(term) === 'subset'
  }

  /** The earliest assignment after which the solution satisfies `term`. */
  satisfier (term: Term): Assignment {
    const s = this.packages.get(term.name)
    if (s !== undefined) {
      for (const a of s.assignments) {
        if (a.accumulated.satisfies(term)) return a
      }
    }
    throw new Error(`internal: ${term.toString()} is not satisfied by the partial solution`)
  }

  /** Decided versions, in decision order. */
  decided (): Array<[string, Version]> {
    const out: Array<[string, Version]> = []
    for (const a of this.assignments) {
      if (a.cause === null) out.push([a.term.name, this.packages.get(a.term.name)?.decision as Version])
    }
    return out
  }
}
