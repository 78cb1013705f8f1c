/**
 * Parsed semver versions with a fast total order (npm precedence, build metadata ignored).
 * We parse once per listed version and compare numbers and identifiers directly, because the
 * solver compares versions in its innermost loops and `semver.compare` re-parses strings.
 */
export interface Version {
  readonly major: number
  readonly minor: number
  readonly patch: number
  /** Pre-release identifiers; empty for a release. */
  readonly pre: ReadonlyArray<string | number>
  /** Canonical text without build metadata, e.g. `1.2.3-beta.1`. */
  readonly text: string
}

const VERSION = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$/
const NUMERIC = /^\d+$/

/** Parses a strict semver string (a leading `v` and `=` are tolerated, as npm does); undefined if invalid. */
export function parseVersion (input: string): Version | undefined {
  const m = VERSION.exec(input.trim().replace(/^=+/, ''))
  if (m === null) return undefined
  const major = Number(m[1]); const minor = Number(m[2]); const patch = Number(m[3])
  if (!Number.isSafeInteger(major) || !Number.isSafeInteger(minor) || !Number.isSafeInteger(patch)) return undefined
  const pre = m[4] === undefined ? [] : m[4].split('.').map(id => NUMERIC.test(id) && Number.isSafeInteger(Number(id)) ? Number(id) : id)
  return makeVersion(major, minor, patch, pre)
}

export function makeVersion (major: number, minor: number, patch: number, pre: ReadonlyArray<string | number> = []): Version {
  const core = `${major}.${minor}.${patch}`
  return { major, minor, patch, pre, text: pre.length === 0 ? core : `${core}-${pre.join('.')}` }
}

export function isPrerelease (v: Version): boolean {
  return v.pre.length > 0
}

/** npm precedence: core numbers, then a release above its pre-releases, then identifiers in turn. */
export function compareVersions (a: Version, b: Version): number {
  if (a === b) return 0
  if (a.major !== b.major) return a.major < b.major ? -1 : 1
  if (a.minor !== b.minor) return a.minor < b.minor ? -1 : 1
  if (a.patch !== b.patch) return a.patch < b.patch ? -1 : 1
  const ap = a.pre; const bp = b.pre
  if (ap.length === 0) return bp.length === 0 ? 0 : 1
  if (bp.length === 0) return -1
  const n = Math.min(ap.length, bp.length)
  for (let i = 0; i < n; i++) {
    const x = ap[i]; const y = bp[i]
    if (x === y) continue
    const xn = typeof x === 'number'; const yn = typeof y === 'number'
    if (xn && yn) return (x as number) < (y as number) ? -1 : 1
    if (xn) return -1 // numeric identifiers sort below alphanumeric ones
    if (yn) return 1
    return (x as string) < (y as string) ? -1 : 1
  }
  return ap.length === bp.length ? 0 : ap.length < bp.length ? -1 : 1
}

/** The release right after `v`'s core numbers: X.Y.(Z+1). */
export function nextPatch (v: Version): Version {
  return makeVersion(v.major, v.minor, v.patch + 1)
}

/** The release X.Y.Z of a version (drops pre-release identifiers). */
export function releaseOf (v: Version): Version {
  return v.pre.length === 0 ? v : makeVersion(v.major, v.minor, v.patch)
}

/** The lowest pre-release of a core triple: X.Y.Z-0. */
export function lowestPrereleaseOf (major: number, minor: number, patch: number): Version {
  return makeVersion(major, minor, patch, [0])
}

/** The smallest pre-release above pre-release `v`: `v.0` (nothing sorts between them). */
export function prereleaseSuccessor (v: Version): Version {
  return makeVersion(v.major, v.minor, v.patch, [...v.pre, 0])
}
