/**
 * Package names and versions.
 *
 * The naming rule (checked by `validatePackageName`):
 * - an optional scope `@scope/` followed by the bare name; both parts follow the same rule;
 * - each part is 1-100 characters of lower-case ASCII letters, digits, `-`, `.` and `_`, and starts
 *   with a letter or a digit (so never `.`, `..` or a hidden name);
 * - no other characters: no upper case, no spaces, no `/` (except the one after the scope), no `\`,
 *   `:`, `%`, `~` or NUL, so a name can be used as a path segment and a URL segment unchanged;
 * - the whole name is at most 214 characters (npm's limit);
 * - `node_modules` and `favicon.ico` are reserved.
 *
 * Versions are SemVer 2.0 in the strict form (npm `semver`, no leading `v`, no loose forms), and
 * dependency ranges are npm ranges.
 */
import semver from 'semver'
import { CoreErrorCode, SwarmpackError } from './errors.js'

export const MAX_NAME_LENGTH = 214
export const MAX_NAME_PART_LENGTH = 100
export const MAX_VERSION_LENGTH = 256
export const MAX_RANGE_LENGTH = 1024

const PART = /^[a-z0-9][a-z0-9._-]*$/
const RESERVED = new Set(['node_modules', 'favicon.ico'])

function invalidName (name: unknown, why: string): SwarmpackError {
  const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 100)) : typeof name
  return new SwarmpackError(CoreErrorCode.INVALID_NAME, `invalid package name ${shown}: ${why}`, { details: { reason: why } })
}

function checkPart (name: string, part: string, what: string): void {
  if (part.length === 0) throw invalidName(name, `empty ${what}`)
  if (part.length > MAX_NAME_PART_LENGTH) throw invalidName(name, `${what} longer than ${MAX_NAME_PART_LENGTH}`)
  if (!PART.test(part)) throw invalidName(name, `${what} must be lower-case letters, digits, '-', '.', '_' and start with a letter or digit`)
}

/** Throws ERR_INVALID_NAME unless `name` follows the naming rule above. */
export function validatePackageName (name: unknown): asserts name is string {
  if (typeof name !== 'string') throw invalidName(name, 'not a string')
  if (name.length === 0) throw invalidName(name, 'empty')
  if (name.length > MAX_NAME_LENGTH) throw invalidName(name, `longer than ${MAX_NAME_LENGTH} characters`)
  let bare = name
  if (name.startsWith('@')) {
    const slash = name.indexOf('/')
    if (slash < 0) throw invalidName(name, 'a scope must be followed by /name')
    checkPart(name, name.slice(1, slash), 'scope')
    bare = name.slice(slash + 1)
  }
  checkPart(name, bare, 'name')
  if (RESERVED.has(bare)) throw invalidName(name, 'reserved name')
}

export function isValidPackageName (name: unknown): name is string {
  try { validatePackageName(name); return true } catch { return false }
}

/** Splits `@scope/name` into its parts (scope undefined when unscoped). Validates first. */
export function parsePackageName (name: string): { scope?: string, name: string } {
  validatePackageName(name)
  if (!name.startsWith('@')) return { name }
  const slash = name.indexOf('/')
  return { scope: name.slice(1, slash), name: name.slice(slash + 1) }
}

/** Throws ERR_INVALID_VERSION unless `version` is a strict SemVer 2.0 version (e.g. `1.2.3-rc.1+build`). */
export function validateVersion (version: unknown): asserts version is string {
  if (typeof version !== 'string' || version.length === 0 || version.length > MAX_VERSION_LENGTH ||
    semver.valid(version) !== version.replace(/\+.*$/, '')) {
    const shown = typeof version === 'string' ? JSON.stringify(version.slice(0, 100)) : typeof version
    throw new SwarmpackError(CoreErrorCode.INVALID_VERSION, `invalid version ${shown}: must be SemVer, e.g. 1.2.3`)
  }
}

/** Throws ERR_INVALID_VERSION unless `range` is a valid npm semver range (e.g. `^1.2.0`, `>=2 <3`). */
export function validateVersionRange (range: unknown): asserts range is string {
  if (typeof range !== 'string' || range.length > MAX_RANGE_LENGTH || semver.validRange(range) === null) {
    const shown = typeof range === 'string' ? JSON.stringify(range.slice(0, 100)) : typeof range
    throw new SwarmpackError(CoreErrorCode.INVALID_VERSION, `invalid version range ${shown}`)
  }
}
