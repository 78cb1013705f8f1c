/**
 * Package names, versions and scope patterns.
 *
 * Names and versions follow the rule of @swarmpack/core (`name` or `@scope/name`, lower case,
 * strict SemVer), so trust never admits a name the content model refuses. A pattern is made of
 * segments joined by `/` like a name, except that a segment may hold one `*`, which matches
 * any run of characters *within that segment*: `*` never crosses `/`, so `acme/*` admits `acme/web`
 * but not `acme/web/extra`, and `*` alone admits only one-segment names.
 */
import { isValidPackageName, validateVersion, validateVersionRange } from '@swarmpack/core'
import { TrustErrorCode, trustError } from './errors.js'

const PATTERN_SEGMENT_RE = /^@?[a-z0-9._*-]+$/
const MAX_NAME_LENGTH = 214
const MAX_SEGMENTS = 8

function segmentsOk (segments: string[], re: RegExp): boolean {
  if (segments.length === 0 || segments.length > MAX_SEGMENTS) return false
  return segments.every((s, i) => re.test(s) && s !== '.' && s !== '..' && (i === 0 || !s.startsWith('@')))
}

export function isValidName (name: unknown): name is string {
  return isValidPackageName(name)
}

export function assertName (name: unknown, what = 'name'): string {
  if (!isValidName(name)) throw trustError(TrustErrorCode.MALFORMED, `${what}: invalid package name ${JSON.stringify(String(name).slice(0, 100))}`, { name: String(name).slice(0, 100) })
  return name
}

/** Strict SemVer (no `v` prefix, no loose forms), so `1.0.0` and `v1.0.0` never name two entries. */
const validVersions = new Set<string>()

export function assertVersion (version: unknown, what = 'version'): string {
  if (typeof version === 'string' && validVersions.has(version)) return version
  try {
    validateVersion(version)
  } catch (err) {
    throw trustError(TrustErrorCode.MALFORMED, `${what}: invalid version ${JSON.stringify(String(version).slice(0, 100))}`, { version: String(version).slice(0, 100) }, err)
  }
  if (validVersions.size >= 10_000) validVersions.clear()
  validVersions.add(version as string)
  return version
}

/** Ranges repeat across an index (`^1.0.0`), and parsing one is the costliest check per entry. */
const validRanges = new Set<string>()

export function isValidRange (range: unknown): range is string {
  if (typeof range === 'string' && validRanges.has(range)) return true
  try { validateVersionRange(range) } catch { return false }
  if (validRanges.size >= 10_000) validRanges.clear()
  validRanges.add(range as string)
  return true
}

export function isValidPattern (pattern: unknown): pattern is string {
  if (typeof pattern !== 'string' || pattern.length > MAX_NAME_LENGTH) return false
  const segments = pattern.split('/')
  return segmentsOk(segments, PATTERN_SEGMENT_RE) && segments.every(s => s.split('*').length <= 2)
}

export function assertPattern (pattern: unknown, what = 'pattern'): string {
  if (!isValidPattern(pattern)) throw trustError(TrustErrorCode.MALFORMED, `${what}: invalid scope pattern ${JSON.stringify(String(pattern).slice(0, 100))}`, { pattern: String(pattern).slice(0, 100) })
  return pattern
}

interface SegmentGlob { prefix: string, suffix: string, star: boolean }

function parseSegment (segment: string): SegmentGlob {
  const star = segment.indexOf('*')
  if (star < 0) return { prefix: segment, suffix: '', star: false }
  return { prefix: segment.slice(0, star), suffix: segment.slice(star + 1), star: true }
}

function segmentMatches (glob: SegmentGlob, segment: string): boolean {
  if (!glob.star) return glob.prefix === segment
  return segment.length >= glob.prefix.length + glob.suffix.length && segment.startsWith(glob.prefix) && segment.endsWith(glob.suffix)
}

/** Whether `pattern` admits `name`. Both are assumed valid; an invalid one never matches. */
export function patternMatches (pattern: string, name: string): boolean {
  if (!isValidPattern(pattern) || !isValidName(name)) return false
  const ps = pattern.split('/')
  const ns = name.split('/')
  return ps.length === ns.length && ps.every((p, i) => segmentMatches(parseSegment(p), ns[i]))
}

export function anyPatternMatches (patterns: readonly string[], name: string): boolean {
  return patterns.some(p => patternMatches(p, name))
}

/**
 * Whether every name `inner` admits is also admitted by `outer` (so a delegation to `inner` does
 * not widen `outer`). Conservative: when in doubt it answers false, which refuses the chain.
 */
export function patternWithin (inner: string, outer: string): boolean {
  if (!isValidPattern(inner) || !isValidPattern(outer)) return false
  const is = inner.split('/')
  const os = outer.split('/')
  if (is.length !== os.length) return false
  return is.every((seg, i) => {
    const a = parseSegment(seg)
    const b = parseSegment(os[i])
    if (!a.star) return segmentMatches(b, a.prefix)
    if (!b.star) return false
    return a.prefix.startsWith(b.prefix) && a.suffix.endsWith(b.suffix)
  })
}

/** Every pattern of `inner` lies within some pattern of `outer`. */
export function scopeWithin (inner: readonly string[], outer: readonly string[]): boolean {
  return inner.every(p => outer.some(o => patternWithin(p, o)))
}
