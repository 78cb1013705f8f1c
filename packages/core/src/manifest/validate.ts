/**
 * Schema validation of a manifest held in memory: the same checks run before encoding (so we
 * never publish a bad manifest) and after decoding (so we never trust one).
 */
import { CID } from 'multiformats/cid'
import { MAX_BLOCK_SIZE, RAW_CODEC, SHA2_256_CODE } from '../block.js'
import { CoreErrorCode, SwarmpackError } from '../errors.js'
import { validatePackageName, validateVersion, validateVersionRange } from '../names.js'
import { MANIFEST_LIMITS } from './limits.js'
import { unsafePath, validateEntryPath, validateTree } from './paths.js'
import type { FileEntry, Manifest, ManifestEntry } from './types.js'

export function invalidManifest (why: string, details: Record<string, unknown> = {}): SwarmpackError {
  return new SwarmpackError(CoreErrorCode.INVALID_MANIFEST, `invalid manifest: ${why}`, { details: { reason: why, ...details } })
}

export const PLATFORM_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/
export const VARIANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+=-]{0,127}$/
/** Device files, fifos and sockets are never part of a package. */
const SPECIAL_TYPES = new Set(['device', 'char', 'block', 'chardev', 'blockdev', 'fifo', 'socket'])

export function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && CID.asCID(v) === null
}

export function checkString (v: unknown, what: string, max: number): string {
  if (typeof v !== 'string') throw invalidManifest(`${what} is not a string`)
  if (v.length > max) throw invalidManifest(`${what} longer than ${max}`)
  return v
}

export function checkInt (v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw invalidManifest(`${what} must be an integer in [${min}, ${max}]`)
  return v
}

function checkLabels (v: unknown, what: string): void {
  if (!Array.isArray(v)) throw invalidManifest(`${what} is not a list`)
  if (v.length > MANIFEST_LIMITS.maxLabels) throw invalidManifest(`more than ${MANIFEST_LIMITS.maxLabels} ${what}`)
  for (const l of v) {
    checkString(l, what, MANIFEST_LIMITS.maxLabelLength)
    if ((l as string).length === 0) throw invalidManifest(`empty entry in ${what}`)
  }
}

function checkDependencies (v: unknown, what: string): void {
  if (!isPlainObject(v)) throw invalidManifest(`${what} is not a map`)
  const keys = Object.keys(v)
  if (keys.length > MANIFEST_LIMITS.maxDependencies) throw invalidManifest(`more than ${MANIFEST_LIMITS.maxDependencies} ${what}`)
  for (const k of keys) {
    validatePackageName(k)
    validateVersionRange(v[k])
  }
}

/** Checks a chunk reference: a raw, sha2-256 CIDv1 and a size of 1..MAX_BLOCK_SIZE. */
export function checkChunkRef (ref: unknown, path: string): number {
  if (!Array.isArray(ref) || ref.length !== 2) throw invalidManifest(`chunk of ${path} is not [cid, size]`)
  const cid = CID.asCID(ref[0])
  if (cid === null || cid.version !== 1 || cid.code !== RAW_CODEC || cid.multihash.code !== SHA2_256_CODE || cid.multihash.size !== 32) {
    throw invalidManifest(`chunk of ${path} is not a raw sha2-256 CIDv1`)
  }
  return checkInt(ref[1], `chunk size in ${path}`, 1, MAX_BLOCK_SIZE)
}

export function checkEntryType (type: unknown, path: string): asserts type is ManifestEntry['type'] {
  if (type === 'file' || type === 'dir' || type === 'symlink') return
  if (typeof type === 'string' && SPECIAL_TYPES.has(type)) throw unsafePath(path, `${type} entries are not allowed`)
  throw invalidManifest(`entry ${JSON.stringify(path)} has unknown type ${JSON.stringify(type)}`)
}

/**
 * Validates a whole manifest (metadata, entries, sizes, paths). Throws typed errors.
 * `packedTotals` (for a decoder that keeps chunk refs elsewhere and has checked each one): the
 * count and byte sum of a file's chunks, used instead of its `chunks` array when given.
 */
export function validateManifest (m: Manifest, packedTotals?: (e: FileEntry) => { count: number, sum: number } | undefined): void {
  if (!isPlainObject(m)) throw invalidManifest('not an object')
  validatePackageName(m.name)
  validateVersion(m.version)
  checkString(m.description, 'description', MANIFEST_LIMITS.maxDescriptionLength)
  checkLabels(m.categories, 'categories')
  checkLabels(m.tags, 'tags')
  checkDependencies(m.dependencies, 'dependencies')
  checkDependencies(m.optionalDependencies, 'optionalDependencies')
  if (typeof m.platform !== 'string' || !PLATFORM_PATTERN.test(m.platform)) throw invalidManifest('platform must match ' + String(PLATFORM_PATTERN))
  if (m.variant !== undefined && (typeof m.variant !== 'string' || !VARIANT_PATTERN.test(m.variant))) throw invalidManifest('variant must match ' + String(VARIANT_PATTERN))
  if (!Array.isArray(m.entries)) throw invalidManifest('entries is not a list')
  if (m.entries.length > MANIFEST_LIMITS.maxEntries) throw invalidManifest(`more than ${MANIFEST_LIMITS.maxEntries} entries`)
  let total = 0
  let chunks = 0
  for (const e of m.entries) {
    if (!isPlainObject(e)) throw invalidManifest('entry is not an object')
    validateEntryPath(e.path)
    checkEntryType(e.type, e.path)
    if (e.type === 'file') {
      if (e.mode !== 0o644 && e.mode !== 0o755) throw invalidManifest(`file ${e.path} has mode ${String(e.mode)}; only 0o644 and 0o755 are allowed`)
      const size = checkInt(e.size, `size of ${e.path}`, 0, MANIFEST_LIMITS.maxTotalSize)
      if (!Array.isArray(e.chunks)) throw invalidManifest(`file ${e.path} has no chunk list`)
      const packed = packedTotals?.(e)
      const count = packed?.count ?? e.chunks.length
      if (count > MANIFEST_LIMITS.maxChunksPerFile) throw invalidManifest(`file ${e.path} has too many chunks`)
      let sum = packed?.sum ?? 0
      if (packed === undefined) for (const c of e.chunks) sum += checkChunkRef(c, e.path)
      if (sum !== size) throw new SwarmpackError(CoreErrorCode.SIZE_MISMATCH, `file ${e.path} declares ${size} bytes but its chunks hold ${sum}`, { details: { path: e.path } })
      total += size
      chunks += count
    } else if (e.type === 'dir') {
      if (e.mode !== 0o755) throw invalidManifest(`directory ${e.path} has mode ${String(e.mode)}; only 0o755 is allowed`)
    }
  }
  if (chunks > MANIFEST_LIMITS.maxTotalChunks) throw invalidManifest('too many chunks in total')
  if (total > MANIFEST_LIMITS.maxTotalSize) throw invalidManifest('package too large')
  checkInt(m.totalSize, 'totalSize', 0, MANIFEST_LIMITS.maxTotalSize)
  if (m.totalSize !== total) throw new SwarmpackError(CoreErrorCode.SIZE_MISMATCH, `manifest declares ${m.totalSize} bytes but its files hold ${total}`)
  validateTree(m.entries)
  if (m.entry !== undefined) {
    validateEntryPath(m.entry)
    if (!m.entries.some(e => e.type === 'file' && e.path === m.entry)) throw invalidManifest(`entry point ${m.entry} is not a file of the package`)
  }
}
