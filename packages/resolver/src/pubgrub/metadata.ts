/**
 * What the solver needs to know about packages, and a cache in front of it.
 *
 * A `MetadataSource` answers two questions, possibly slowly (the answers may come from indexes
 * that must be fetched): which versions of a package exist, and what one version depends on.
 * `MetadataCache` asks each question at most once, lets the solver prefetch answers it will
 * likely need next (with bounded concurrency), and counts every request, so callers can see how
 * much metadata a resolution needed. Keep one cache across resolutions for warm metadata.
 */
import { SwarmpackError, isSwarmpackError, CoreErrorCode } from '@swarmpack/core'
import { type Version, parseVersion, compareVersions, isPrerelease } from './version.js'
import type { Unavailable, Incompatibility } from './incompatibility.js'

export interface VersionInfo {
  version: string
  /** Dependencies (name -> npm range), when the listing already carries them (as npm packuments do). */
  dependencies?: Record<string, string>
  /** Set when this version exists but cannot be used (trust policy, no variant for the host, ...). */
  unavailable?: Unavailable
}

export interface PackageListing {
  versions: ReadonlyArray<string | VersionInfo>
  /** Set when the package as a whole cannot be used (unknown, rejected by the trust policy, ...). */
  unavailable?: Unavailable
}

export interface VersionMetadata {
  dependencies: Record<string, string>
  /** Set when the version turns out to be unusable once its metadata is read. */
  unavailable?: Unavailable
}

export interface MetadataRequestOptions {
  signal?: AbortSignal
}

export interface MetadataSource {
  /** Versions of `name`. Unknown packages: return `unavailable` (or throw ERR_NOT_FOUND). */
  listVersions: (name: string, options: MetadataRequestOptions) => Promise<PackageListing> | PackageListing
  /** Dependencies of `name@version`; only called for versions whose listing did not carry them. */
  getDependencies: (name: string, version: string, options: MetadataRequestOptions) => Promise<VersionMetadata> | VersionMetadata
}

export interface VersionRecord {
  readonly version: Version
  /**
   * The version as the source listed it, build metadata included (`1.0.2+2`): what the source is
   * asked about, what the resolution returns and what explanations show. `version.text` drops the
   * build metadata, which npm ignores when comparing.
   */
  readonly listed: string
  unavailable: Unavailable | undefined
  dependencies: Record<string, string> | undefined
  /** The solver's dependency incompatibilities for this version, kept across resolutions (per pre-release mode). */
  facts?: { includePrerelease: boolean, list: Incompatibility[] }
}

export interface PackageEntry {
  readonly name: string
  /** Every listed version, sorted ascending, usable or not. */
  readonly all: VersionRecord[]
  /** Index into `all` by version text. */
  readonly byText: Map<string, number>
  /** Usable releases and usable pre-releases, each sorted ascending (for counting and picking). */
  readonly releases: Version[]
  readonly prereleases: Version[]
  readonly unavailable: Unavailable | undefined
}

export interface MetadataCounts {
  /** listVersions calls made to the source. */
  listVersions: number
  /** getDependencies calls made to the source. */
  getDependencies: number
  /** Of those calls, how many were started as prefetches rather than on demand. */
  prefetched: number
}

export interface MetadataCacheOptions {
  /** How many prefetch requests may be in flight at once (default 8; 0 turns prefetching off). */
  prefetchConcurrency?: number
}

export class MetadataCache {
  readonly source: MetadataSource
  readonly counts: MetadataCounts = { listVersions: 0, getDependencies: 0, prefetched: 0 }
  private readonly entries = new Map<string, PackageEntry>()
  private readonly pendingEntries = new Map<string, Promise<PackageEntry>>()
  private readonly pendingDeps = new Map<string, Promise<void>>()
  private readonly prefetchQueue: Array<() => Promise<unknown>> = []
  private prefetchActive = 0
  private readonly prefetchConcurrency: number

  constructor (source: MetadataSource, options: MetadataCacheOptions = {}) {
    this.source = source
    this.prefetchConcurrency = options.prefetchConcurrency ?? 8
  }

  /** The listing if it is already here. */
  peek (name: string): PackageEntry | undefined {
    return this.entries.get(name)
  }

  async listing (name: string, options: MetadataRequestOptions = {}, prefetch = false): Promise<PackageEntry> {
    const have = this.entries.get(name)
    if (have !== undefined) return have
    let p = this.pendingEntries.get(name)
    if (p === undefined) {
      this.counts.listVersions++
      if (prefetch) this.counts.prefetched++
      p = (async () => {
        let listing: PackageListing
        try {
          listing = await this.source.listVersions(name, options)
        } catch (err) {
          if (isSwarmpackError(err, CoreErrorCode.NOT_FOUND)) listing = { versions: [], unavailable: { kind: 'not-found', message: 'no such package' } }
          else throw err
        }
        const entry = buildEntry(name, listing)
        this.entries.set(name, entry)
        return entry
      })()
      this.pendingEntries.set(name, p)
      p.then(() => this.pendingEntries.delete(name), () => this.pendingEntries.delete(name))
    }
    return await p
  }

  /** Fills in `record.dependencies` (and `unavailable`) for one version. */
  async dependencies (entry: PackageEntry, record: VersionRecord, options: MetadataRequestOptions = {}, prefetch = false): Promise<VersionRecord> {
    if (record.dependencies !== undefined || record.unavailable !== undefined) return record
    const key = `${entry.name}@${record.listed}`
    let p = this.pendingDeps.get(key)
    if (p === undefined) {
      this.counts.getDependencies++
      if (prefetch) this.counts.prefetched++
      p = (async () => {
        const meta = await this.source.getDependencies(entry.name, record.listed, options)
        if (meta === null || typeof meta !== 'object' || meta.dependencies === null || typeof meta.dependencies !== 'object') {
          throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `metadata source returned no dependencies object for ${key}`)
        }
        record.dependencies = meta.dependencies
        if (meta.unavailable !== undefined) record.unavailable = meta.unavailable
      })()
      this.pendingDeps.set(key, p)
      p.then(() => this.pendingDeps.delete(key), () => this.pendingDeps.delete(key))
    }
    await p
    return record
  }

  /** Starts fetching a listing in the background, unless it is here or on its way. */
  prefetchListing (name: string, options: MetadataRequestOptions = {}): void {
    if (this.prefetchConcurrency === 0 || this.entries.has(name) || this.pendingEntries.has(name)) return
    this.enqueue(async () => await this.listing(name, options, true))
  }

  /** Starts fetching one version's dependencies in the background. */
  prefetchDependencies (entry: PackageEntry, record: VersionRecord, options: MetadataRequestOptions = {}): void {
    if (this.prefetchConcurrency === 0 || record.dependencies !== undefined || record.unavailable !== undefined) return
    if (this.pendingDeps.has(`${entry.name}@${record.listed}`)) return
    this.enqueue(async () => await this.dependencies(entry, record, options, true))
  }

  private enqueue (task: () => Promise<unknown>): void {
    this.prefetchQueue.push(task)
    this.pump()
  }

  private pump (): void {
    while (this.prefetchActive < this.prefetchConcurrency && this.prefetchQueue.length > 0) {
      const task = this.prefetchQueue.shift() as () => Promise<unknown>
      this.prefetchActive++
      // a failed prefetch is forgotten: the solver asks again if it really needs the answer
      task().catch(() => {}).finally(() => { this.prefetchActive--; this.pump() })
    }
  }
}

function buildEntry (name: string, listing: PackageListing): PackageEntry {
  if (listing === null || typeof listing !== 'object' || !Array.isArray(listing.versions)) {
    throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `metadata source returned no version list for ${name}`)
  }
  const seen = new Map<string, VersionRecord>()
  for (const item of listing.versions) {
    const info: VersionInfo = typeof item === 'string' ? { version: item } : item
    const version = typeof info?.version === 'string' ? parseVersion(info.version) : undefined
    if (version === undefined) continue // not semver: not a candidate
    if (seen.has(version.text)) continue // 1.0.0+a and 1.0.0+b are the same version to npm
    seen.set(version.text, { version, listed: info.version.trim(), unavailable: info.unavailable, dependencies: info.dependencies })
  }
  const all = [...seen.values()].sort((a, b) => compareVersions(a.version, b.version))
  const byText = new Map<string, number>()
  const releases: Version[] = []; const prereleases: Version[] = []
  all.forEach((r, i) => {
    byText.set(r.version.text, i)
    if (r.unavailable !== undefined) return
    if (isPrerelease(r.version)) prereleases.push(r.version); else releases.push(r.version)
  })
  return { name, all, byText, releases, prereleases, unavailable: listing.unavailable }
}
