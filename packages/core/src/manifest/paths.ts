/**
 * Path safety for manifest entries. A path is a relative POSIX path written in exactly one way:
 * segments separated by single `/`, no empty, `.` or `..` segment, no leading or trailing `/`, no
 * backslash, no NUL or other control character. Because every path has exactly one spelling,
 * tricks like `a/./b`, `a//b`, `a/b/` or `a\b` are refused rather than normalised. Two paths that
 * are equal after canonical decomposition and full Unicode case folding are duplicates too (they
 * would land on the same file on macOS or Windows), and so are a symlink and a path that runs
 * through it under another spelling. Symlink targets must be relative and stay inside the root.
 */
import { posix } from 'node:path'
import { caseFold } from 'unicode-case-folding'
import { CoreErrorCode, SwarmpackError } from '../errors.js'
import { MANIFEST_LIMITS } from './limits.js'
import type { ManifestEntry } from './types.js'

const encoder = new TextEncoder()

export function unsafePath (path: unknown, why: string): SwarmpackError {
  const shown = typeof path === 'string' ? JSON.stringify(path.slice(0, 200)) : typeof path
  return new SwarmpackError(CoreErrorCode.UNSAFE_PATH, `unsafe path ${shown}: ${why}`, { details: { path: typeof path === 'string' ? path.slice(0, 200) : undefined, reason: why } })
}

// Control characters (including NUL), backslash, and the characters Windows forbids in names.
const FORBIDDEN = /[\u0000-\u001f\u007f\\]/

/** Throws ERR_UNSAFE_PATH unless `path` is a canonical, relative, contained path. */
export function validateEntryPath (path: unknown): asserts path is string {
  if (typeof path !== 'string') throw unsafePath(path, 'not a string')
  if (path.length === 0) throw unsafePath(path, 'empty')
  if (path.includes('\u0000')) throw unsafePath(path, 'NUL in name')
  if (FORBIDDEN.test(path)) throw unsafePath(path, 'backslash or control character')
  if (path.startsWith('/')) throw unsafePath(path, 'absolute')
  if (/^[A-Za-z]:/.test(path)) throw unsafePath(path, 'drive letter')
  if (path.endsWith('/')) throw unsafePath(path, 'trailing slash')
  if (encoder.encode(path).length > MANIFEST_LIMITS.maxPathBytes) throw unsafePath(path, `longer than ${MANIFEST_LIMITS.maxPathBytes} bytes`)
  const segments = path.split('/')
  if (segments.length > MANIFEST_LIMITS.maxPathDepth) throw unsafePath(path, `deeper than ${MANIFEST_LIMITS.maxPathDepth}`)
  for (const s of segments) {
    if (s === '') throw unsafePath(path, 'empty segment (//)')
    if (s === '.') throw unsafePath(path, '"." segment')
    if (s === '..') throw unsafePath(path, '".." segment')
    if (encoder.encode(s).length > MANIFEST_LIMITS.maxSegmentBytes) throw unsafePath(path, `segment longer than ${MANIFEST_LIMITS.maxSegmentBytes} bytes`)
  }
}

/** Throws ERR_UNSAFE_PATH unless the symlink at `path` pointing to `target` stays inside the root. */
export function validateLinkTarget (path: string, target: unknown): asserts target is string {
  if (typeof target !== 'string' || target.length === 0) throw unsafePath(path, 'symlink without a target')
  if (target.includes('\u0000') || FORBIDDEN.test(target)) throw unsafePath(path, 'symlink target with NUL, backslash or control character')
  if (encoder.encode(target).length > MANIFEST_LIMITS.maxLinkTargetBytes) throw unsafePath(path, 'symlink target too long')
  if (target.startsWith('/') || /^[A-Za-z]:/.test(target)) throw unsafePath(path, 'symlink to an absolute path')
  const resolved = posix.normalize(posix.join(posix.dirname(path), target))
  if (resolved === '..' || resolved.startsWith('../') || resolved.startsWith('/')) throw unsafePath(path, `symlink leaves the package root (${target})`)
  if (resolved === '.' ) throw unsafePath(path, 'symlink to the package root itself')
}

/**
 * A target that walks through another symlink of the package and then on (`B/../..`) can escape
 * even though its text resolves inside: the kernel follows B first, and B may point shallower than
 * its own position. Such targets are refused; pointing *at* a symlink (last component) is fine.
 */
function checkLinkChain (path: string, target: string, kinds: Map<string, ManifestEntry['type']>): void {
  const dir = posix.dirname(path)
  const cur = dir === '.' ? [] : dir.split('/')
  const parts = target.split('/')
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]
    if (p === '' || p === '.') continue
    if (p === '..') { cur.pop(); continue }
    cur.push(p)
    if (kinds.get(collisionKey(cur.join('/'))) === 'symlink') throw unsafePath(path, `symlink target goes through another symlink (${cur.join('/')})`)
  }
}

/**
 * The key under which two paths collide on a case-insensitive or normalising file system: Unicode
 * canonical caseless matching (NFD, full case folding from CaseFolding.txt, NFD again), so `ſ`
 * meets `s`, `ß` meets `ss` and `K` (Kelvin) meets `k`; `toLowerCase` folds none of the first two.
 * Upper-casing first also joins dotless `ı` with `i`, as NTFS's upper-case table does. The key
 * may join more names than a given file system would: that only refuses more.
 */
export function collisionKey (path: string): string {
  return caseFold(path.normalize('NFD').toUpperCase()).normalize('NFD')
}

/**
 * Checks a whole entry list: each path and link target, no duplicates (also after case folding
 * and NFC), and no entry below a file or a symlink (writing through a symlink could leave the root).
 */
export function validateTree (entries: readonly ManifestEntry[]): void {
  const kinds = new Map<string, ManifestEntry['type']>()
  for (const e of entries) {
    validateEntryPath(e.path)
    if (e.type === 'symlink') validateLinkTarget(e.path, e.target)
    const key = collisionKey(e.path)
    if (kinds.has(key)) throw unsafePath(e.path, 'duplicate path')
    kinds.set(key, e.type)
  }
  for (const e of entries) {
    if (e.type === 'symlink') checkLinkChain(e.path, e.target, kinds)
    let slash = e.path.lastIndexOf('/')
    while (slash > 0) {
      const parent = e.path.slice(0, slash)
      const kind = kinds.get(collisionKey(parent))
      if (kind === 'file') throw unsafePath(e.path, `parent ${parent} is a file`)
      if (kind === 'symlink') throw unsafePath(e.path, `parent ${parent} is a symlink`)
      slash = parent.lastIndexOf('/')
    }
  }
}
