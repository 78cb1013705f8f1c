/**
 * Exact sets of semver versions, closed under intersection, union and complement.
 *
 * npm's rule for pre-releases makes a range's set no single union of intervals: `^1.2.0-beta.1`
 * holds the releases in [1.2.0, 2.0.0) but only the pre-releases of 1.2.0 from beta.1 up. So a set
 * keeps two lanes, each a normalised union of half-open intervals [lo, hi):
 *   - `rel`: which releases are in the set (bounds are releases),
 *   - `pre`: which pre-releases are in the set (bounds are pre-releases).
 * Every set operation works lane by lane, and because the bounds of each lane are snapped to values
 * of that lane, two equal sets always have the same representation.
 */
import semver from 'semver'
import {
  type Version, compareVersions, isPrerelease, nextPatch, releaseOf, lowestPrereleaseOf,
  prereleaseSuccessor, parseVersion
} from './version.js'

/** [lo, hi): lo inclusive, hi exclusive; null means unbounded on that side. */
export interface Interval {
  readonly lo: Version | null
  readonly hi: Version | null
}

type Lane = readonly Interval[]

const FULL: Lane = [{ lo: null, hi: null }]
const EMPTY: Lane = []

function loLess (a: Version | null, b: Version | null): number {
  if (a === null) return b === null ? 0 : -1
  if (b === null) return 1
  return compareVersions(a, b)
}
function hiLess (a: Version | null, b: Version | null): number {
  if (a === null) return b === null ? 0 : 1
  if (b === null) return -1
  return compareVersions(a, b)
}
/** Whether [lo, hi) is empty. */
function emptyInterval (lo: Version | null, hi: Version | null): boolean {
  return lo !== null && hi !== null && compareVersions(lo, hi) >= 0
}

/** 0.0.0 is the lowest release and 0.0.0-0 the lowest pre-release: as lower bounds they mean "unbounded". */
function isBottom (v: Version | null): boolean {
  return v !== null && v.major === 0 && v.minor === 0 && v.patch === 0 && (v.pre.length === 0 || (v.pre.length === 1 && v.pre[0] === 0))
}

function normalise (items: Interval[]): Lane {
  if (items.length === 1) { // the common case, without the array passes below
    const i = items[0]
    if (emptyInterval(i.lo, i.hi)) return EMPTY
    return isBottom(i.lo) ? [{ lo: null, hi: i.hi }] : items
  }
  const list = items
    .filter(i => !emptyInterval(i.lo, i.hi))
    .map(i => isBottom(i.lo) ? { lo: null, hi: i.hi } : i)
    .sort((a, b) => loLess(a.lo, b.lo))
  if (list.length <= 1) return list
  const out: Interval[] = []
  let cur = list[0]
  for (let i = 1; i < list.length; i++) {
    const next = list[i]
    // touching or overlapping intervals merge: [a, b) + [b, c) = [a, c)
    if (cur.hi === null || next.lo === null || compareVersions(next.lo, cur.hi) <= 0) {
      if (hiLess(next.hi, cur.hi) > 0) cur = { lo: cur.lo, hi: next.hi }
    } else {
      out.push(cur)
      cur = next
    }
  }
  out.push(cur)
  return out
}

function laneIntersect (a: Lane, b: Lane): Lane {
  if (a.length === 0 || b.length === 0) return EMPTY
  if (a === FULL) return b
  if (b === FULL) return a
  const out: Interval[] = []
  let i = 0; let j = 0
  while (i < a.length && j < b.length) {
    const x = a[i]; const y = b[j]
    const lo = loLess(x.lo, y.lo) >= 0 ? x.lo : y.lo
    const hi = hiLess(x.hi, y.hi) <= 0 ? x.hi : y.hi
    if (!emptyInterval(lo, hi)) out.push({ lo, hi })
    if (hiLess(x.hi, y.hi) <= 0) i++; else j++
  }
  return out
}

/** Whether two lanes share a point, without building their intersection. */
function laneIntersects (a: Lane, b: Lane): boolean {
  let i = 0; let j = 0
  while (i < a.length && j < b.length) {
    const x = a[i]; const y = b[j]
    const lo = loLess(x.lo, y.lo) >= 0 ? x.lo : y.lo
    const hi = hiLess(x.hi, y.hi) <= 0 ? x.hi : y.hi
    if (!emptyInterval(lo, hi)) return true
    if (hiLess(x.hi, y.hi) <= 0) i++; else j++
  }
  return false
}

function laneUnion (a: Lane, b: Lane): Lane {
  if (a.length === 0) return b
  if (b.length === 0) return a
  if (a === FULL || b === FULL) return FULL
  return normalise([...a, ...b])
}

function laneComplement (a: Lane): Lane {
  if (a.length === 0) return FULL
  if (a === FULL) return EMPTY
  const out: Interval[] = []
  let prev: Version | null = null
  let first = true
  for (const x of a) {
    if (!(first && x.lo === null)) out.push({ lo: first ? null : prev, hi: x.lo })
    first = false
    prev = x.hi
    if (x.hi === null) return out
  }
  out.push({ lo: prev, hi: null })
  return out
}

function laneSubset (a: Lane, b: Lane): boolean {
  let j = 0
  for (const x of a) {
    while (j < b.length && b[j].hi !== null && x.lo !== null && compareVersions(b[j].hi as Version, x.lo) <= 0) j++
    if (j === b.length) return false
    const y = b[j]
    if (loLess(y.lo, x.lo) > 0 || hiLess(x.hi, y.hi) > 0) return false
  }
  return true
}

function laneEquals (a: Lane, b: Lane): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    if (loLess(a[i].lo, b[i].lo) !== 0 || hiLess(a[i].hi, b[i].hi) !== 0) return false
  }
  return true
}

function laneContains (a: Lane, v: Version): boolean {
  for (const x of a) {
    if (x.hi !== null && compareVersions(v, x.hi) >= 0) continue
    return x.lo === null || compareVersions(v, x.lo) >= 0
  }
  return false
}

/** Index of the first element of sorted `list` that is >= v (list.length if none). */
export function lowerBound (list: readonly Version[], v: Version | null): number {
  if (v === null) return 0
  let lo = 0; let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareVersions(list[mid], v) < 0) lo = mid + 1; else hi = mid
  }
  return lo
}
function upperIndex (list: readonly Version[], v: Version | null): number {
  return v === null ? list.length : lowerBound(list, v)
}

function newestInLane (lane: Lane, list: readonly Version[]): Version | undefined {
  for (let i = lane.length - 1; i >= 0; i--) {
    const x = lane[i]
    const idx = upperIndex(list, x.hi) - 1
    if (idx >= 0 && idx >= lowerBound(list, x.lo)) return list[idx]
  }
  return undefined
}

// Snapping a general bound (v, inclusive) onto each lane.
function relLower (v: Version, inclusive: boolean): Version {
  if (isPrerelease(v)) return releaseOf(v)
  return inclusive ? v : nextPatch(v)
}
function relUpper (v: Version, inclusive: boolean): Version {
  if (isPrerelease(v)) return releaseOf(v)
  return inclusive ? nextPatch(v) : v
}
function preLower (v: Version, inclusive: boolean): Version {
  if (!isPrerelease(v)) return lowestPrereleaseOf(v.major, v.minor, v.patch + 1)
  return inclusive ? v : prereleaseSuccessor(v)
}
function preUpper (v: Version, inclusive: boolean): Version {
  if (!isPrerelease(v)) return lowestPrereleaseOf(v.major, v.minor, v.patch + 1)
  return inclusive ? prereleaseSuccessor(v) : v
}

interface Bound { v: Version, inclusive: boolean }

export interface RangeOptions {
  /** Let every range match pre-releases (npm's `includePrerelease`). */
  includePrerelease?: boolean
}

const rangeCache = new Map<string, VersionSet | null>()
/** One set per version object: decisions make the same exact sets over and over. */
const exactCache = new WeakMap<Version, VersionSet>()

export class VersionSet {
  /** Every version, releases and pre-releases. */
  static readonly ANY = new VersionSet(FULL, FULL)
  /** No version. */
  static readonly NONE = new VersionSet(EMPTY, EMPTY)

  readonly rel: Lane
  readonly pre: Lane
  /** The range text this set was parsed from, kept for messages. */
  label: string | undefined
  /** Set by `exact`: the one version this set holds (lets relations with it be a `contains`). */
  single: Version | undefined

  private constructor (rel: Lane, pre: Lane, label?: string) {
    this.rel = rel
    this.pre = pre
    this.label = label
  }

  private static of (rel: Lane, pre: Lane): VersionSet {
    if (rel.length === 0 && pre.length === 0) return VersionSet.NONE
    if (rel === FULL && pre === FULL) return VersionSet.ANY
    return new VersionSet(rel, pre)
  }

  /** Exactly one version (the same object each time for the same version object). */
  static exact (v: Version): VersionSet {
    let set = exactCache.get(v)
    if (set === undefined) {
      set = isPrerelease(v)
        ? new VersionSet(EMPTY, normalise([{ lo: v, hi: prereleaseSuccessor(v) }]))
        : new VersionSet(normalise([{ lo: v, hi: nextPatch(v) }]), EMPTY)
      set.single = v
      exactCache.set(v, set)
    }
    return set
  }

  /** Every version (release or pre-release) v with lo <= v < hi; null bounds are open. */
  static between (lo: Version | null, hi: Version | null): VersionSet {
    return VersionSet.fromBounds(lo === null ? null : { v: lo, inclusive: true }, hi === null ? null : { v: hi, inclusive: false }, true)
  }

  private static fromBounds (lo: Bound | null, hi: Bound | null, withPre: boolean): VersionSet {
    const rel = normalise([{ lo: lo === null ? null : relLower(lo.v, lo.inclusive), hi: hi === null ? null : relUpper(hi.v, hi.inclusive) }])
    const pre = withPre ? normalise([{ lo: lo === null ? null : preLower(lo.v, lo.inclusive), hi: hi === null ? null : preUpper(hi.v, hi.inclusive) }]) : EMPTY
    return VersionSet.of(rel, pre)
  }

  /**
   * The set of versions an npm range matches, exactly as `semver.satisfies` decides (build metadata
   * ignored). Returns undefined for text that is not a valid range. Results are cached by text.
   */
  static fromRange (range: string, options: RangeOptions = {}): VersionSet | undefined {
    const includePrerelease = options.includePrerelease === true
    const key = (includePrerelease ? '1' : '0') + range
    const hit = rangeCache.get(key)
    if (hit !== undefined) return hit ?? undefined
    let parsed: semver.Range
    try {
      parsed = new semver.Range(range, { includePrerelease })
    } catch {
      rangeCache.set(key, null)
      return undefined
    }
    let rel: Lane = EMPTY; let pre: Lane = EMPTY
    for (const comparators of parsed.set) {
      let lo: Bound | null = null; let hi: Bound | null = null
      const tuples: Version[] = []
      for (const c of comparators) {
        if (c.semver === (semver.Comparator as unknown as { ANY: unknown }).ANY) continue
        const v = parseVersion(c.semver.version)
        if (v === undefined) continue
        if (isPrerelease(v)) tuples.push(v)
        const op = c.operator
        if (op === '>' || op === '>=' || op === '' || op === '=') {
          const b = { v, inclusive: op !== '>' }
          if (lo === null || compareVersions(b.v, lo.v) > 0 || (compareVersions(b.v, lo.v) === 0 && !b.inclusive)) lo = b
        }
        if (op === '<' || op === '<=' || op === '' || op === '=') {
          const b = { v, inclusive: op !== '<' }
          if (hi === null || compareVersions(b.v, hi.v) < 0 || (compareVersions(b.v, hi.v) === 0 && !b.inclusive)) hi = b
        }
      }
      const part = VersionSet.fromBounds(lo, hi, true)
      rel = laneUnion(rel, part.rel)
      let partPre = part.pre
      if (!includePrerelease) {
        // npm: a pre-release matches only if some comparator of this set names a pre-release of
        // the same major.minor.patch
        const bands = normalise(tuples.map(t => ({ lo: lowestPrereleaseOf(t.major, t.minor, t.patch), hi: lowestPrereleaseOf(t.major, t.minor, t.patch + 1) })))
        partPre = laneIntersect(partPre, bands)
      }
      pre = laneUnion(pre, partPre)
    }
    const set = VersionSet.of(rel, pre)
    const out = set === VersionSet.ANY || set === VersionSet.NONE ? new VersionSet(set.rel, set.pre) : set
    out.label = range.trim() === '' ? '*' : range.trim()
    rangeCache.set(key, out)
    return out
  }

  isEmpty (): boolean { return this.rel.length === 0 && this.pre.length === 0 }
  isAny (): boolean { return laneEquals(this.rel, FULL) && laneEquals(this.pre, FULL) }

  contains (v: Version): boolean {
    return laneContains(isPrerelease(v) ? this.pre : this.rel, v)
  }

  intersect (o: VersionSet): VersionSet {
    if (o === this) return this
    // a decision meets a set that allows it: the result is the decision's own set, no lane walk
    if (this.single !== undefined && o.contains(this.single)) return this
    if (o.single !== undefined && this.contains(o.single)) return o
    return VersionSet.of(laneIntersect(this.rel, o.rel), laneIntersect(this.pre, o.pre))
  }

  union (o: VersionSet): VersionSet {
    if (o === this) return this
    return VersionSet.of(laneUnion(this.rel, o.rel), laneUnion(this.pre, o.pre))
  }

  complement (): VersionSet {
    return VersionSet.of(laneComplement(this.rel), laneComplement(this.pre))
  }

  /** this \ o */
  difference (o: VersionSet): VersionSet {
    if (this.single !== undefined) return o.contains(this.single) ? VersionSet.NONE : this
    return this.intersect(o.complement())
  }

  /** Every version in this set is also in `o`. */
  subsetOf (o: VersionSet): boolean {
    return laneSubset(this.rel, o.rel) && laneSubset(this.pre, o.pre)
  }

  /** The two sets share at least one version. */
  intersects (o: VersionSet): boolean {
    return laneIntersects(this.rel, o.rel) || laneIntersects(this.pre, o.pre)
  }

  equals (o: VersionSet): boolean {
    return laneEquals(this.rel, o.rel) && laneEquals(this.pre, o.pre)
  }

  /** How many of the given sorted releases and sorted pre-releases are in the set. */
  countIn (releases: readonly Version[], prereleases: readonly Version[]): number {
    let n = 0
    for (const x of this.rel) n += Math.max(0, upperIndex(releases, x.hi) - lowerBound(releases, x.lo))
    for (const x of this.pre) n += Math.max(0, upperIndex(prereleases, x.hi) - lowerBound(prereleases, x.lo))
    return n
  }

  /** The highest of the given sorted releases / pre-releases that is in the set. */
  newestIn (releases: readonly Version[], prereleases: readonly Version[]): Version | undefined {
    const r = newestInLane(this.rel, releases)
    const p = newestInLane(this.pre, prereleases)
    if (r === undefined) return p
    if (p === undefined) return r
    return compareVersions(r, p) >= 0 ? r : p
  }

  /** The releases of this set, without its pre-releases. */
  releasesOnly (): VersionSet {
    return this.pre.length === 0 ? this : VersionSet.of(this.rel, EMPTY)
  }

  /** Short npm-style text: the parsed range's own text when it has one, else a canonical rendering. */
  toString (): string {
    if (this.label !== undefined) return this.label
    if (this.isAny()) return 'any version'
    if (this.isEmpty()) return 'no version'
    const rel = this.rel.map(renderRelease)
    const pre = this.pre.map(renderPrerelease)
    if (rel.length === 0) return pre.join(' || ')
    return pre.length === 0 ? rel.join(' || ') : `${rel.join(' || ')} (pre-releases ${pre.join(' || ')})`
  }
}

function renderRelease (x: Interval): string {
  const { lo, hi } = x
  if (lo === null && hi === null) return '*'
  if (lo === null) return hi?.text === '0.0.1' ? '0.0.0' : `<${(hi as Version).text}`
  if (hi === null) return `>=${lo.text}`
  if (hi.major === lo.major && hi.minor === lo.minor && hi.patch === lo.patch + 1) return lo.text
  if (lo.major > 0 && hi.major === lo.major + 1 && hi.minor === 0 && hi.patch === 0) return `^${lo.text}`
  if (lo.major === 0 && lo.minor > 0 && hi.major === 0 && hi.minor === lo.minor + 1 && hi.patch === 0) return `^${lo.text}`
  if (hi.major === lo.major && hi.minor === lo.minor + 1 && hi.patch === 0) return `~${lo.text}`
  return `>=${lo.text} <${hi.text}`
}

/** X.Y.Z-0 with Z > 0: in the pre-release lane it sits right after the pre-releases of X.Y.(Z-1). */
function afterTriple (v: Version): string | undefined {
  return v.pre.length === 1 && v.pre[0] === 0 && v.patch > 0 ? `${v.major}.${v.minor}.${v.patch - 1}` : undefined
}

function renderPrerelease (x: Interval): string {
  const { lo, hi } = x
  if (lo !== null && hi !== null && compareVersions(hi, prereleaseSuccessor(lo)) === 0) return lo.text
  const parts: string[] = []
  if (lo !== null) { const t = afterTriple(lo); parts.push(t === undefined ? `>=${lo.text}` : `>${t}`) }
  if (hi !== null) { const t = afterTriple(hi); parts.push(t === undefined ? `<${hi.text}` : `<${t}`) }
  return parts.length === 0 ? '*' : parts.join(' ')
}
