/**
 * PubGrub version solving (Natalie Weizenbaum's algorithm, as in Dart pub and pubgrub-rs) over
 * npm semver, with lazy asynchronous metadata.
 *
 * Loop: propagate what the incompatibilities force (unit propagation); on a conflict, derive a new
 * incompatibility from it and jump back to the decision level where it becomes useful (conflict
 * resolution with learning and backjumping); when nothing more is forced, pick a package and a
 * version (decision). Ends when every required package is decided, or when the root itself is
 * incompatible, which is then explained.
 *
 * Decision heuristic: among the packages that must be selected but are not decided yet, take
 * packages named in `update` first, then the one with the fewest usable versions allowed (a
 * usable locked version counts as one), ties by name; pick its locked version if it is allowed,
 * usable and not being updated, otherwise the newest allowed usable version.
 */
import { logger } from '@libp2p/logger'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { SwarmpackError, CoreErrorCode } from '@swarmpack/core'
import { ResolverErrorCode } from '../errors.js'
import { Term } from './term.js'
import { Incompatibility, type Unavailable } from './incompatibility.js'
import { PartialSolution, decisionTerm, type Assignment } from './partial-solution.js'
import { VersionSet } from './version-set.js'
import { type Version, parseVersion } from './version.js'
import { MetadataCache, type MetadataSource, type PackageEntry, type VersionRecord, type MetadataCounts } from './metadata.js'
import { explainFailure, type FailureReport } from './report.js'
import { CandidateQueue, type Candidate } from './candidate-queue.js'

const log = logger('swarmpack:resolver')

/**
 * An incompatibility as this solver tracks it (incompatibilities themselves are shared between
 * resolutions through the metadata cache). `dead` is an assignment after which one of its terms is
 * contradicted: while that assignment stays in the partial solution the incompatibility can
 * neither force nor conflict, so propagation skips it without looking at its terms (as a SAT
 * solver skips a clause it knows is satisfied).
 */
interface Tracked {
  readonly inc: Incompatibility
  dead: Assignment | undefined
}

export type ResolveProgressEvents =
  ProgressEvent<'resolve:decision', { name: string, version: string }> |
  ProgressEvent<'resolve:conflict', { incompatibility: string }>

export interface ResolveOptions extends ProgressOptions<ResolveProgressEvents> {
  /** Wanted packages: name -> npm range. */
  dependencies: Record<string, string>
  /** Where versions and dependencies come from; pass a `MetadataCache` to share warm metadata. */
  source: MetadataSource | MetadataCache
  /** Name and version of the root (the deployment); default `root` 0.0.0. */
  rootName?: string
  rootVersion?: string
  /** Versions from a lockfile (name -> version), kept while they still fit. */
  locked?: Record<string, string>
  /** Packages whose locked version is released (`true`: all of them). */
  update?: string[] | true
  /** Let every range match pre-releases (npm's `includePrerelease`). */
  includePrerelease?: boolean
  /** Give up after this many steps (decisions, propagations, conflict steps); default 1,000,000. */
  maxSteps?: number
  /** Give up after this long, including time spent waiting for metadata; default 120,000 ms. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface ResolveStats {
  steps: number
  decisions: number
  conflicts: number
  /** Incompatibilities known at the end (external and learned). */
  incompatibilities: number
  /** Requests made to the metadata source during this resolution. */
  requests: MetadataCounts
  elapsedMs: number
}

export interface Resolution {
  /** Selected version of every package needed (the root not included), sorted by name. */
  versions: Map<string, string>
  /** Dependencies (name -> range) of every selected package, as its metadata states them. */
  dependencies: Map<string, Record<string, string>>
  stats: ResolveStats
}

export interface ResolveFailureDetails extends Record<string, unknown> {
  failure: FailureReport
  stats: ResolveStats
}

/** Resolves `options.dependencies` to one version per package, or throws ERR_RESOLVE_CONFLICT with an explanation. */
export async function resolve (options: ResolveOptions): Promise<Resolution> {
  return await new Solver(options).solve()
}

class Solver {
  private readonly options: ResolveOptions
  private readonly cache: MetadataCache
  private readonly rootName: string
  private readonly rootVersion: Version
  private readonly rootEntry: PackageEntry
  private readonly locked = new Map<string, Version>()
  private readonly released: Set<string> | true
  private readonly solution: PartialSolution
  private readonly byPackage = new Map<string, Tracked[]>()
  private readonly stamps = new Map<string, number>()
  private readonly queue = new CandidateQueue()
  /** Pending packages whose listing has not arrived yet (no queue entry until it has). */
  private readonly unlisted = new Set<string>()
  /** Packages changed since the last decision (queued again then, if they await a decision). */
  private readonly dirty = new Set<string>()
  private readonly dependencyFacts = new Map<VersionRecord, Incompatibility[]>()
  private incompatibilityCount = 0
  private steps = 0
  private decisions = 0
  private conflicts = 0
  private readonly start = performance.now()
  private readonly maxSteps: number
  private readonly deadline: number
  private readonly startCounts: MetadataCounts
  private readonly limitSignal: AbortController = new AbortController()
  private readonly signal: AbortSignal
  private aborted: Promise<never> | undefined

  constructor (options: ResolveOptions) {
    this.options = options
    if (options.dependencies === null || typeof options.dependencies !== 'object') {
      throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'dependencies must be an object of name -> range')
    }
    this.cache = options.source instanceof MetadataCache ? options.source : new MetadataCache(options.source)
    this.startCounts = { ...this.cache.counts }
    this.rootName = options.rootName ?? 'root'
    const rv = parseVersion(options.rootVersion ?? '0.0.0')
    if (rv === undefined) throw new SwarmpackError(ResolverErrorCode.INVALID_VERSION, `root version ${String(options.rootVersion)} is not valid semver`)
    this.rootVersion = rv
    for (const [name, range] of Object.entries(options.dependencies)) {
      if (typeof range !== 'string' || VersionSet.fromRange(range, this.rangeOptions) === undefined) {
        throw new SwarmpackError(ResolverErrorCode.INVALID_RANGE, `${name}: ${String(range)} is not a valid semver range`, { details: { name, range } })
      }
    }
    for (const [name, version] of Object.entries(options.locked ?? {})) {
      const v = typeof version === 'string' ? parseVersion(version) : undefined
      if (v === undefined) throw new SwarmpackError(ResolverErrorCode.INVALID_VERSION, `locked ${name}@${String(version)} is not valid semver`, { details: { name, version } })
      this.locked.set(name, v)
    }
    this.released = options.update === true ? true : new Set(options.update ?? [])
    this.rootEntry = {
      name: this.rootName,
      all: [{ version: rv, listed: rv.text, unavailable: undefined, dependencies: options.dependencies }],
      byText: new Map([[rv.text, 0]]),
      releases: [rv],
      prereleases: [],
      unavailable: undefined
    }
    this.maxSteps = options.maxSteps ?? 1_000_000
    this.deadline = this.start + (options.timeoutMs ?? 120_000)
    this.signal = options.signal === undefined ? this.limitSignal.signal : AbortSignal.any([options.signal, this.limitSignal.signal])
    this.solution = new PartialSolution(name => { this.changed(name) })
  }

  private get rangeOptions (): { includePrerelease: boolean } {
    return { includePrerelease: this.options.includePrerelease === true }
  }

  async solve (): Promise<Resolution> {
    const timer = setTimeout(() => this.limitSignal.abort(), Math.max(0, this.deadline - performance.now()))
    timer.unref?.()
    try {
      this.addIncompatibility(new Incompatibility([new Term(this.rootName, VersionSet.exact(this.rootVersion), false)], { kind: 'root' }))
      let next: string | undefined = this.rootName
      while (next !== undefined) {
        this.tick()
        this.propagate(next)
        next = await this.decide()
      }
      return this.result()
    } finally {
      clearTimeout(timer)
    }
  }

  private stats (): ResolveStats {
    const c = this.cache.counts
    return {
      steps: this.steps,
      decisions: this.decisions,
      conflicts: this.conflicts,
      incompatibilities: this.incompatibilityCount,
      requests: {
        listVersions: c.listVersions - this.startCounts.listVersions,
        getDependencies: c.getDependencies - this.startCounts.getDependencies,
        prefetched: c.prefetched - this.startCounts.prefetched
      },
      elapsedMs: performance.now() - this.start
    }
  }

  private result (): Resolution {
    const picked = this.solution.decided().filter(([name]) => name !== this.rootName).sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
    const versions = new Map<string, string>()
    const dependencies = new Map<string, Record<string, string>>()
    for (const [name, v] of picked) {
      const entry = this.cache.peek(name) as PackageEntry
      const record = entry.all[entry.byText.get(v.text) as number]
      versions.set(name, record.listed)
      dependencies.set(name, record.dependencies ?? {})
    }
    const stats = this.stats()
    if (log.enabled) log('resolved %d packages in %d ms, %d steps, %d conflicts', versions.size, Math.round(stats.elapsedMs), stats.steps, stats.conflicts)
    return { versions, dependencies, stats }
  }

  private tick (): void {
    this.steps++
    if (this.options.signal?.aborted === true) {
      throw new SwarmpackError(CoreErrorCode.ABORTED, 'resolution was aborted', { cause: this.options.signal.reason })
    }
    if (this.steps > this.maxSteps || performance.now() > this.deadline) this.limitError()
  }

  private limitError (): never {
    const stats = this.stats()
    const which = this.steps > this.maxSteps ? `${this.maxSteps} steps` : `${this.options.timeoutMs ?? 120_000} ms`
    throw new SwarmpackError(ResolverErrorCode.LIMIT, `resolution gave up after ${which} (${stats.decisions} decisions, ${stats.conflicts} conflicts)`, { details: { stats } })
  }

  private addIncompatibility (inc: Incompatibility): void {
    this.incompatibilityCount++
    const tracked: Tracked = { inc, dead: undefined }
    for (const t of inc.terms) {
      let list = this.byPackage.get(t.name)
      if (list === undefined) { list = []; this.byPackage.set(t.name, list) }
      list.push(tracked)
    }
  }

  // ---- unit propagation ----

  private propagate (start: string): void {
    const changed = [start]
    const queued = new Set(changed)
    while (changed.length > 0) {
      const name = changed.pop() as string
      queued.delete(name)
      const list = this.byPackage.get(name)
      if (list === undefined) continue
      // newest first: learned incompatibilities are the most informative
      const trail = this.solution.assignments
      for (let i = list.length - 1; i >= 0; i--) {
        const tracked = list[i]
        const dead = tracked.dead
        if (dead !== undefined && trail[dead.index] === dead) continue
        const inc = tracked.inc
        const found = this.almostSatisfied(inc, name, tracked)
        if (found === undefined) continue
        if (found === 'conflict') {
          const learned = this.resolveConflict(inc)
          const term = this.almostSatisfied(learned)
          if (term === undefined || term === 'conflict') throw new Error('internal: learned incompatibility is not almost satisfied after backjumping')
          this.solution.derive(term.inverse(), learned)
          changed.length = 0
          queued.clear()
          changed.push(term.name)
          queued.add(term.name)
          break
        }
        this.solution.derive(found.inverse(), inc)
        if (!queued.has(found.name)) { changed.push(found.name); queued.add(found.name) }
      }
    }
  }

  /** 'conflict' if the solution satisfies every term; the one open term if it satisfies all others; else undefined. */
  private almostSatisfied (inc: Incompatibility, changed?: string, tracked?: Tracked): Term | 'conflict' | undefined {
    const terms = inc.terms
    let open: Term | undefined
    let done = -1
    // the package that just changed first: it is the likeliest to contradict its term, ending the check
    if (changed !== undefined && terms.length > 1) {
      done = terms[0].name === changed ? 0 : terms[1].name === changed ? 1 : -1
      if (done >= 0) {
        const rel = this.solution.relation(terms[done])
        if (rel === 'disjoint') {
          if (tracked !== undefined) tracked.dead = this.solution.latest(terms[done].name)
          return undefined
        }
        if (rel === 'overlapping') open = terms[done]
      }
    }
    for (let i = 0; i < terms.length; i++) {
      if (i === done) continue
      const t = terms[i]
      const rel = this.solution.relation(t)
      if (rel === 'disjoint') {
        if (tracked !== undefined) tracked.dead = this.solution.latest(t.name)
        return undefined
      }
      if (rel === 'overlapping') {
        if (open !== undefined) return undefined
        open = t
      }
    }
    return open ?? 'conflict'
  }

  // ---- conflict resolution ----

  private resolveConflict (conflict: Incompatibility): Incompatibility {
    if (log.enabled) log.trace('conflict %s', conflict.toString())
    let inc = conflict
    let learned = false
    while (!inc.isFailure(this.rootName)) {
      this.tick()
      let mostRecentTerm: Term | undefined
      let mostRecent: ReturnType<PartialSolution['satisfier']> | undefined
      let difference: Term | undefined
      let previousLevel = 1
      for (const t of inc.terms) {
        const satisfier = this.solution.satisfier(t)
        if (mostRecent === undefined) {
          mostRecent = satisfier; mostRecentTerm = t
        } else if (mostRecent.index < satisfier.index) {
          previousLevel = Math.max(previousLevel, mostRecent.level)
          mostRecent = satisfier; mostRecentTerm = t; difference = undefined
        } else {
          previousLevel = Math.max(previousLevel, satisfier.level)
        }
        if (mostRecentTerm === t) {
          // the satisfier may say more than the term needs; what it adds must come from earlier
          const diff = mostRecent.term.difference(t)
          if (!diff.isEmpty()) {
            difference = diff
            previousLevel = Math.max(previousLevel, this.solution.satisfier(diff.inverse()).level)
          } else {
            difference = undefined
          }
        }
      }
      const satisfier = mostRecent as NonNullable<typeof mostRecent>
      if (previousLevel < satisfier.level || satisfier.cause === null) {
        this.solution.backtrack(previousLevel)
        if (learned) this.addIncompatibility(inc)
        return inc
      }
      const terms = inc.terms.filter(t => t !== mostRecentTerm)
      for (const t of satisfier.cause.terms) if (t.name !== satisfier.term.name) terms.push(t)
      if (difference !== undefined) terms.push(difference.inverse())
      inc = new Incompatibility(terms, { kind: 'derived', left: inc, right: satisfier.cause }, this.rootName)
      learned = true
      this.conflicts++
      this.options.onProgress?.(new CustomProgressEvent('resolve:conflict', { incompatibility: inc.toString() }))
    }
    this.fail(inc)
  }

  private fail (inc: Incompatibility): never {
    const failure = explainFailure(inc, { rootName: this.rootName, rootVersion: this.rootVersion, listing: name => this.listing(name) })
    const details: ResolveFailureDetails = { failure, stats: this.stats() }
    log('no solution: %s', failure.explanation)
    throw new SwarmpackError(ResolverErrorCode.CONFLICT, failure.explanation, { details })
  }

  // ---- decisions ----

  private listing (name: string): PackageEntry | undefined {
    return name === this.rootName ? this.rootEntry : this.cache.peek(name)
  }

  private async fetchListing (name: string, prefetchOnly = false): Promise<PackageEntry> {
    if (name === this.rootName) return this.rootEntry
    try {
      return await this.guard(this.cache.listing(name, { signal: this.signal }, prefetchOnly))
    } catch (err) {
      throw this.metadataError(err, `listing versions of ${name}`)
    }
  }

  private async fetchDependencies (entry: PackageEntry, record: VersionRecord): Promise<VersionRecord> {
    try {
      return await this.guard(this.cache.dependencies(entry, record, { signal: this.signal }))
    } catch (err) {
      throw this.metadataError(err, `reading dependencies of ${entry.name}@${record.listed}`)
    }
  }

  /** Waits for a metadata answer, but no longer than the time limit or the caller's signal. */
  private async guard<T> (p: Promise<T>): Promise<T> {
    if (this.signal.aborted) this.onAbort()
    if (this.aborted === undefined) {
      // one listener for the whole resolution, however many answers are awaited at once
      this.aborted = new Promise<never>((_resolve, reject) => {
        this.signal.addEventListener('abort', () => { reject(new Error('aborted')) }, { once: true })
      })
      this.aborted.catch(() => {})
    }
    try {
      return await Promise.race([p, this.aborted])
    } catch (err) {
      if (this.signal.aborted) this.onAbort()
      throw err
    }
  }

  private onAbort (): never {
    if (this.options.signal?.aborted === true) throw new SwarmpackError(CoreErrorCode.ABORTED, 'resolution was aborted', { cause: this.options.signal.reason })
    this.limitError()
  }

  private metadataError (err: unknown, what: string): unknown {
    if (err instanceof SwarmpackError && (err.code === CoreErrorCode.ABORTED || err.code === ResolverErrorCode.LIMIT)) return err
    return new SwarmpackError(ResolverErrorCode.METADATA, `metadata source failed while ${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
  }

  private isReleased (name: string): boolean {
    return this.released === true || this.released.has(name)
  }

  /** The locked version of `name` if it is allowed by `set`, usable, and not released for update. */
  private usableLock (name: string, set: VersionSet, entry: PackageEntry): Version | undefined {
    if (this.isReleased(name)) return undefined
    const v = this.locked.get(name)
    if (v === undefined || !set.contains(v)) return undefined
    const i = entry.byText.get(v.text)
    if (i === undefined || entry.all[i].unavailable !== undefined) return undefined
    return v
  }

  /** Called whenever a package's assignments change: queue it again if it awaits a decision. */
  private changed (name: string): void {
    this.stamps.set(name, (this.stamps.get(name) ?? 0) + 1)
    // queued at the next decision, once however often it changes until then (a propagation
    // narrows a package several times, a backjump touches hundreds)
    this.dirty.add(name)
  }

  private enqueue (name: string, entry: PackageEntry, stamp: number): void {
    const acc = this.solution.accumulated(name) as Term
    const count = entry.unavailable !== undefined
      ? -1 // surface an unusable package at once
      : this.usableLock(name, acc.set, entry) !== undefined ? 1 : acc.countIn(entry.releases, entry.prereleases)
    this.queue.push({ name, priority: this.isReleased(name) && this.locked.has(name) ? 0 : 1, count, stamp })
  }

  private readonly validCandidate = (c: Candidate): boolean => this.solution.pending.has(c.name) && this.stamps.get(c.name) === c.stamp

  /** Makes the next decision; returns the package to propagate from, or undefined when done. */
  private async decide (): Promise<string | undefined> {
    for (const name of this.dirty) {
      if (!this.solution.pending.has(name)) continue
      const entry = this.listing(name)
      if (entry === undefined) this.unlisted.add(name)
      else this.enqueue(name, entry, this.stamps.get(name) as number)
    }
    this.dirty.clear()
    // stale entries sink and pile up; drop them now and then so the heap stays shallow
    if (this.queue.size > 2 * this.solution.pending.size + 1024) this.queue.compact(this.validCandidate)
    if (this.unlisted.size > 0) {
      const names = [...this.unlisted].filter(n => this.solution.pending.has(n))
      this.unlisted.clear()
      await Promise.all(names.map(async n => await this.fetchListing(n)))
      for (const n of names) if (this.solution.pending.has(n)) this.enqueue(n, this.listing(n) as PackageEntry, this.stamps.get(n) as number)
    }
    const best = this.queue.peek(this.validCandidate)
    if (best === undefined) return undefined
    const name = best.name
    const acc = this.solution.accumulated(name) as Term
    const entry = this.listing(name) as PackageEntry

    if (entry.unavailable !== undefined) {
      this.addIncompatibility(new Incompatibility([new Term(name, VersionSet.ANY, true)], { kind: 'unavailable', name, reason: entry.unavailable }))
      return name
    }
    const version = this.usableLock(name, acc.set, entry) ?? acc.set.newestIn(entry.releases, entry.prereleases)
    if (version === undefined) {
      const unavailable: Array<{ version: string, reason: Unavailable }> = []
      for (const r of entry.all) if (r.unavailable !== undefined && acc.set.contains(r.version)) unavailable.push({ version: r.listed, reason: r.unavailable })
      this.addIncompatibility(new Incompatibility([new Term(name, acc.set, true)], { kind: 'no-versions', name, set: acc.set, unavailable }))
      return name
    }

    const index = entry.byText.get(version.text) as number
    let record = entry.all[index]
    if (record.dependencies === undefined && record.unavailable === undefined) record = await this.fetchDependencies(entry, record)
    if (record.unavailable !== undefined) {
      this.addIncompatibility(new Incompatibility([new Term(name, VersionSet.exact(version), true)], { kind: 'unavailable', name, version: record.listed, reason: record.unavailable }))
      return name
    }

    // after a backjump the same version is often decided again: its dependency facts are kept
    // (and a shared cache keeps them across resolutions: they depend only on the metadata)
    let facts = this.dependencyFacts.get(record)
    let first = false
    if (facts === undefined) {
      first = true
      const pre = this.options.includePrerelease === true
      if (name !== this.rootName && record.facts !== undefined && record.facts.includePrerelease === pre) {
        facts = record.facts.list
      } else {
        const made = this.dependencyIncompatibilities(name, entry, index, version, record)
        if (made === undefined) return name // the version turned out unusable
        facts = made
        if (name !== this.rootName) record.facts = { includePrerelease: pre, list: facts }
      }
      this.dependencyFacts.set(record, facts)
      for (const inc of facts) this.addIncompatibility(inc)
    }
    // would deciding `version` satisfy every term of one of them? then do not decide: propagation learns from it
    const chosen = decisionTerm(name, version)
    let conflict = false
    for (const inc of facts) {
      let all = true
      // the dependency's term first: it is the one that usually stops the check
      for (let i = inc.terms.length - 1; i >= 0; i--) {
        const t = inc.terms[i]
        if ((t.name === name ? t.relationFrom(chosen) : this.solution.relation(t)) !== 'subset') { all = false; break }
      }
      if (all) { conflict = true; break }
    }
    if (!conflict) {
      this.solution.decide(name, version)
      this.decisions++
      this.options.onProgress?.(new CustomProgressEvent('resolve:decision', { name, version: record.listed }))
      if (first) this.prefetch(Object.keys(record.dependencies ?? {}))
    }
    return name
  }

  /** The dependency incompatibilities of name@version; undefined (and an unavailability fact) if its metadata is broken. */
  private dependencyIncompatibilities (name: string, entry: PackageEntry, index: number, version: Version, record: VersionRecord): Incompatibility[] | undefined {
    const deps = record.dependencies ?? {}
    const out: Incompatibility[] = []
    for (const dep of Object.keys(deps)) {
      const range = deps[dep]
      const set = typeof range === 'string' ? VersionSet.fromRange(range, this.rangeOptions) : undefined
      if (set === undefined) {
        const reason: Unavailable = { kind: 'invalid', message: `its dependency ${dep} has range ${JSON.stringify(range)}, which is not semver` }
        record.unavailable = reason
        this.addIncompatibility(new Incompatibility([new Term(name, VersionSet.exact(version), true)], { kind: 'unavailable', name, version: record.listed, reason }))
        return undefined
      }
      let dependerSet: VersionSet
      if (name === this.rootName) {
        dependerSet = VersionSet.exact(version)
      } else {
        const [lo, hi] = this.dependerRun(entry, index, dep, range)
        dependerSet = VersionSet.between(lo === 0 ? null : entry.all[lo].version, hi === entry.all.length - 1 ? null : entry.all[hi + 1].version)
      }
      const inc = new Incompatibility(
        [new Term(name, dependerSet, true), new Term(dep, set, false)],
        { kind: 'dependency', depender: name, dependerSet, dependency: dep, range })
      if (inc.terms.length === 1 && inc.terms[0].isEmpty()) continue // depends on itself, within range: harmless
      out.push(inc)
    }
    return out
  }

  /**
   * The widest run of listed versions around `index` that have the same dependency on `dep`
   * (as far as their metadata is already known; at least the version itself), as indexes into
   * `entry.all`. As a range (bounds on listed versions, so it holds exactly the run's listed
   * versions) it makes "a >=2.0.0 depends on b ^3.0.0" one fact instead of one per version, which
   * keeps learning fast and explanations short.
   */
  private dependerRun (entry: PackageEntry, index: number, dep: string, range: string): [number, number] {
    let lo = index; let hi = index
    while (lo > 0 && sameDependency(entry.all[lo - 1], dep, range)) lo--
    while (hi < entry.all.length - 1 && sameDependency(entry.all[hi + 1], dep, range)) hi++
    return [lo, hi]
  }

  /** Background-fetch listings of new dependencies, and the dependencies of their likely picks. */
  private prefetch (names: string[]): void {
    for (const dep of names) {
      if (dep === this.rootName) continue
      const entry = this.cache.peek(dep)
      if (entry === undefined) {
        this.cache.prefetchListing(dep, { signal: this.signal })
        continue
      }
      const acc = this.solution.accumulated(dep)
      if (acc === undefined || !acc.positive || entry.unavailable !== undefined) continue
      const v = this.usableLock(dep, acc.set, entry) ?? acc.set.newestIn(entry.releases, entry.prereleases)
      if (v !== undefined) this.cache.prefetchDependencies(entry, entry.all[entry.byText.get(v.text) as number], { signal: this.signal })
    }
  }
}

function sameDependency (r: VersionRecord, dep: string, range: string): boolean {
  return r.unavailable === undefined && r.dependencies !== undefined && r.dependencies[dep] === range
}
