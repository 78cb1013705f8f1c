/**
 * Incompatibilities: sets of terms that must never all hold at once, each with the reason it is
 * known. External ones come from the root, the metadata and availability; derived ones are learned
 * by conflict resolution from two others, which makes the derivation graph behind an explanation.
 */
import { Term } from './term.js'
import type { VersionSet } from './version-set.js'

/** Why a package or version cannot be used. */
export interface Unavailable {
  /** `trust`: rejected by the trust policy; `platform`: no variant for the host; `not-found`: unknown to the source; `invalid`: broken metadata. */
  kind: 'trust' | 'platform' | 'not-found' | 'invalid' | 'other'
  /** Plain words for people, e.g. "signed by an unknown key" or "linux-arm64". */
  message: string
}

export type Cause =
  | { kind: 'root' }
  /** `depender` (a version range of it) depends on `dependency` with range text `range`. */
  | { kind: 'dependency', depender: string, dependerSet: VersionSet, dependency: string, range: string }
  /** No listed and usable version of `name` is in `set`; `unavailable` lists versions in `set` that exist but cannot be used. */
  | { kind: 'no-versions', name: string, set: VersionSet, unavailable: Array<{ version: string, reason: Unavailable }> }
  /** The whole package (version undefined) or one version of it is unavailable. */
  | { kind: 'unavailable', name: string, version?: string, reason: Unavailable }
  | { kind: 'derived', left: Incompatibility, right: Incompatibility }

let nextId = 1

export class Incompatibility {
  readonly id: number
  readonly terms: Term[]
  readonly cause: Cause

  /** Terms on the same package are merged by intersection. */
  constructor (terms: Term[], cause: Cause, rootName?: string) {
    this.id = nextId++
    this.cause = cause
    let merged: Term[]
    if (terms.length === 2 && terms[0].name !== terms[1].name) {
      merged = terms
    } else {
      const byName = new Map<string, Term>()
      for (const t of terms) {
        const prev = byName.get(t.name)
        byName.set(t.name, prev === undefined ? t : prev.intersect(t))
      }
      merged = [...byName.values()]
    }
    // The root is always selected, so a derived "root and X" says no more than "X"; dropping the
    // root term makes explanations read better (as pub does).
    if (cause.kind === 'derived' && rootName !== undefined && merged.length > 1) {
      const rest = merged.filter(t => !(t.name === rootName && t.positive))
      if (rest.length > 0) merged = rest
    }
    this.terms = merged
  }

  get isDerived (): boolean {
    return this.cause.kind === 'derived'
  }

  /** True when this incompatibility means the root itself cannot be selected: resolution failed. */
  isFailure (rootName: string): boolean {
    return this.terms.length === 0 || (this.terms.length === 1 && this.terms[0].positive && this.terms[0].name === rootName)
  }

  term (name: string): Term | undefined {
    return this.terms.find(t => t.name === name)
  }

  toString (): string {
    return `{${this.terms.map(t => t.toString()).join(', ')}}`
  }
}
