/**
 * Manifest <-> dag-cbor blocks.
 *
 * Wire format (all dag-cbor, keys sorted by the codec, so encoding is deterministic):
 *   root   { format: 'swarmpack/manifest@1', name, version, description, categories, tags,
 *            dependencies, optionalDependencies, platform, variant?, entry?, totalSize,
 *            entryCount, entries: [entry...] }            for small manifests (<= 64 KiB), else
 *          { ...same..., pages: [CID...] }                 with the entries spread over pages
 *          (pages end at path-hash boundaries, so unchanged pages are shared between versions)
 *   page   { format: 'swarmpack/manifest-page@1', entries: [entry...] }
 *   entry  { type: 'file', path, mode, size, chunks: [[CID, size]...] }
 *          { type: 'file', path, mode, size, chunkLists: [CID...] }   for files over 8192 chunks
 *          { type: 'dir', path, mode } | { type: 'symlink', path, target }
 *   chunk list { format: 'swarmpack/chunk-list@1', chunks: [[CID, size]...] }
 * Every block stays under MAX_BLOCK_SIZE.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { DAG_CBOR_CODEC, MAX_BLOCK_SIZE, SHA2_256_CODE, decodeCbor, encodeCborBlock, verifyBlock } from '../block.js'
import type { Block } from '../block.js'
import { CoreErrorCode, SwarmpackError, throwIfAborted } from '../errors.js'
import { scanCbor } from '../cbor-scan.js'
import { CHUNKS_PER_PAGE, INLINE_CHUNKS, MANIFEST_LIMITS } from './limits.js'
import { CHUNK_LIST_FORMAT, MANIFEST_FORMAT, MANIFEST_PAGE_FORMAT } from './types.js'
import type { ChunkRef, FileEntry, Manifest, ManifestEntry, PackageMetadata } from './types.js'
import { checkChunkRef, checkEntryType, checkInt, checkString, invalidManifest, isPlainObject, validateManifest } from './validate.js'
import { validateEntryPath } from './paths.js'

/** Anything that returns a block's bytes by CID: a Provider, a blockstore adapter. */
export interface BlockGetter {
  get(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array>
}

export interface EncodedManifest {
  /** The root block; its CID is the package's root CID. */
  root: Block
  /** Every manifest block: pages and chunk lists first, the root last. */
  blocks: Block[]
}

/** Room kept in a page for its own header (format key, array header). */
const PAGE_OVERHEAD = 128
/** Manifests whose entries encode to at most this many bytes keep them inline in the root. */
const INLINE_MAX = 64 * 1024
/** Average page size (bytes of entries) aimed at. */
const PAGE_TARGET = 32 * 1024
const MAX_PAGES_TARGET = 8192

/** FNV-1a over the path's UTF-16 code units: a fixed, cheap hash for page boundaries. */
function pathHash (path: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** Builds a full Manifest from publisher metadata plus the file tree, filling defaults. */
export function createManifest (meta: PackageMetadata, entries: ManifestEntry[]): Manifest {
  let totalSize = 0
  for (const e of entries) if (e.type === 'file') totalSize += e.size
  const m: Manifest = {
    name: meta.name,
    version: meta.version,
    description: meta.description ?? '',
    categories: meta.categories ?? [],
    tags: meta.tags ?? [],
    dependencies: meta.dependencies ?? {},
    optionalDependencies: meta.optionalDependencies ?? {},
    platform: meta.platform ?? 'any',
    totalSize,
    entries
  }
  if (meta.variant !== undefined) m.variant = meta.variant
  if (meta.entry !== undefined) m.entry = meta.entry
  return m
}

function header (m: Manifest): Record<string, unknown> {
  const h: Record<string, unknown> = {
    format: MANIFEST_FORMAT,
    name: m.name,
    version: m.version,
    description: m.description,
    categories: m.categories,
    tags: m.tags,
    dependencies: m.dependencies,
    optionalDependencies: m.optionalDependencies,
    platform: m.platform,
    totalSize: m.totalSize,
    entryCount: m.entries.length
  }
  if (m.variant !== undefined) h.variant = m.variant
  if (m.entry !== undefined) h.entry = m.entry
  return h
}

/** Encodes a manifest into blocks, splitting it over linked pages when it exceeds one block. */
export function encodeManifest (m: Manifest): EncodedManifest {
  validateManifest(m)
  const blocks: Block[] = []
  const wire: Array<Record<string, unknown>> = m.entries.map(e => {
    if (e.type === 'dir') return { type: 'dir', path: e.path, mode: e.mode }
    if (e.type === 'symlink') return { type: 'symlink', path: e.path, target: e.target }
    if (e.chunks.length <= INLINE_CHUNKS) return { type: 'file', path: e.path, mode: e.mode, size: e.size, chunks: e.chunks }
    const lists: CID[] = []
    for (let i = 0; i < e.chunks.length; i += CHUNKS_PER_PAGE) {
      const list = encodeCborBlock({ format: CHUNK_LIST_FORMAT, chunks: e.chunks.slice(i, i + CHUNKS_PER_PAGE) })
      blocks.push(list)
      lists.push(list.cid)
    }
    return { type: 'file', path: e.path, mode: e.mode, size: e.size, chunkLists: lists }
  })
  const h = header(m)
  const sizes = wire.map(w => dagCbor.encode(w).length)
  const headerSize = dagCbor.encode(h).length
  const entryBytes = sizes.reduce((a, b) => a + b, 0)
  if (headerSize + 16 + entryBytes <= INLINE_MAX) {
    const root = encodeCborBlock({ ...h, entries: wire })
    blocks.push(root)
    return { root, blocks }
  }
  // A page ends after an entry with probability (its encoded size / pageTarget), decided by a hash
  // of its path: each boundary depends on that entry alone, so a new version that changes, adds or
  // removes a few files changes only the pages around them, and the other pages are blocks the
  // node already has (like content-defined chunking, at the level of entries). Pages average
  // pageTarget bytes; it doubles for huge manifests so the root lists at most ~MAX_PAGES_TARGET.
  let pageTarget = PAGE_TARGET
  while (entryBytes / pageTarget > MAX_PAGES_TARGET) pageTarget *= 2
  const pages: CID[] = []
  const emit = (from: number, to: number): void => {
    const page = encodeCborBlock({ format: MANIFEST_PAGE_FORMAT, entries: wire.slice(from, to) })
    blocks.push(page)
    pages.push(page.cid)
  }
  let start = 0
  let size = PAGE_OVERHEAD
  for (let i = 0; i < wire.length; i++) {
    if (size + sizes[i] > MAX_BLOCK_SIZE) {
      if (i === start) throw invalidManifest(`entry ${m.entries[i].path} does not fit in one block`)
      emit(start, i)
      start = i
      size = PAGE_OVERHEAD
    }
    size += sizes[i]
    if (pathHash(m.entries[i].path) < (sizes[i] / pageTarget) * 2 ** 32) {
      emit(start, i + 1)
      start = i + 1
      size = PAGE_OVERHEAD
    }
  }
  if (start < wire.length) emit(start, wire.length)
  const root = encodeCborBlock({ ...h, pages })
  blocks.push(root)
  return { root, blocks }
}

/** Fetches a block, verifies it against its CID and scans its CBOR structure before decoding. */
async function fetchStructured (cid: CID, source: BlockGetter, signal: AbortSignal | undefined, budget: { bytes: number }): Promise<Record<string, unknown>> {
  throwIfAborted(signal)
  if (cid.code !== DAG_CBOR_CODEC || cid.multihash.code !== SHA2_256_CODE || cid.version !== 1) {
    throw invalidManifest(`manifest block ${cid.toString()} is not a dag-cbor sha2-256 CIDv1`)
  }
  const bytes = await source.get(cid, { signal })
  verifyBlock(cid, bytes)
  budget.bytes += bytes.length
  if (budget.bytes > MANIFEST_LIMITS.maxManifestBytes) throw invalidManifest(`manifest blocks exceed ${MANIFEST_LIMITS.maxManifestBytes} bytes`)
  return decodeStructured(bytes)
}

function decodeStructured (bytes: Uint8Array): Record<string, unknown> {
  scanCbor(bytes, { maxDepth: MANIFEST_LIMITS.maxCborDepth, maxItems: MANIFEST_LIMITS.maxCborItemsPerBlock })
  let value: unknown
  try {
    value = decodeCbor(bytes)
  } catch (err) {
    throw new SwarmpackError(CoreErrorCode.INVALID_MANIFEST, 'invalid manifest: not valid dag-cbor', { cause: err })
  }
  if (!isPlainObject(value)) throw invalidManifest('block is not a map')
  return value
}

function checkKeys (obj: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw invalidManifest(`unknown field ${JSON.stringify(k.slice(0, 64))} in ${what}`)
}

function checkCidList (v: unknown, what: string, max: number): CID[] {
  if (!Array.isArray(v)) throw invalidManifest(`${what} is not a list`)
  if (v.length === 0 || v.length > max) throw invalidManifest(`${what} must hold 1..${max} links`)
  return v.map(x => {
    const cid = CID.asCID(x)
    if (cid === null) throw invalidManifest(`${what} holds a non-link`)
    return cid
  })
}

const ROOT_KEYS = ['format', 'name', 'version', 'description', 'categories', 'tags', 'dependencies', 'optionalDependencies', 'platform', 'variant', 'entry', 'totalSize', 'entryCount', 'entries', 'pages'] as const
const FILE_KEYS = ['type', 'path', 'mode', 'size', 'chunks', 'chunkLists']
const DIR_KEYS = ['type', 'path', 'mode']
const LINK_KEYS = ['type', 'path', 'target']

export interface DecodeManifestOptions {
  signal?: AbortSignal
}

export interface LoadedManifest {
  manifest: Manifest
  /** CIDs of every manifest block (root, pages, chunk lists), root first. */
  manifestBlocks: CID[]
}

/** A compact holder of one file's chunk refs (unpack uses a packed 36-bytes-a-CID list). */
export interface PackedChunkRefs {
  add(cid: CID, size: number): void
}

export interface LoadPackedOptions<L extends PackedChunkRefs> extends DecodeManifestOptions {
  /** Makes the holder for one file's chunks. */
  newList: () => L
}

export interface LoadedPackedManifest<L extends PackedChunkRefs> extends LoadedManifest {
  /** Each file entry's chunks; the entries themselves keep `chunks: []`. */
  lists: Map<FileEntry, L>
}

/**
 * Fetches and decodes a manifest from its root CID: every block is verified against its CID,
 * scanned for CBOR limits, and the whole manifest is schema-checked (ERR_INVALID_MANIFEST,
 * ERR_UNSAFE_PATH, ERR_SIZE_MISMATCH, ERR_INVALID_NAME, ERR_INVALID_VERSION) before it is returned.
 */
export async function loadManifest (root: CID, source: BlockGetter, options: DecodeManifestOptions = {}): Promise<LoadedManifest> {
  const { manifest, manifestBlocks } = await loadManifestInto(root, source, options, undefined)
  return { manifest, manifestBlocks }
}

/**
 * loadManifest with the same checks, but each file's chunk refs go into a holder from
 * `options.newList` as soon as their block (page or chunk list) is decoded, before the next block
 * is fetched. The CID objects made by the dag-cbor decoder then die young instead of all living
 * until the whole manifest is decoded (~45 MiB of old-generation garbage for a 1 GiB package).
 */
export async function loadManifestPacked<L extends PackedChunkRefs> (root: CID, source: BlockGetter, options: LoadPackedOptions<L>): Promise<LoadedPackedManifest<L>> {
  return await loadManifestInto(root, source, options, options.newList)
}

interface ChunkTotals { count: number, sum: number }

function sizeMismatch (why: string, path: string): SwarmpackError {
  return new SwarmpackError(CoreErrorCode.SIZE_MISMATCH, why, { details: { path } })
}

async function loadManifestInto<L extends PackedChunkRefs> (root: CID, source: BlockGetter, options: DecodeManifestOptions, newList: (() => L) | undefined): Promise<LoadedPackedManifest<L>> {
  const budget = { bytes: 0 }
  const pageCids: CID[] = []
  const listCids: CID[] = []
  const lists = new Map<FileEntry, L>()
  const totals = new Map<FileEntry, ChunkTotals>()
  const entries: ManifestEntry[] = []
  /** The root's totalSize and the running sum of the file sizes declared so far. */
  const declared = { total: 0, sum: 0 }

  /** Decodes one wire entry; a file's chunk lists are fetched (and packed) right here. */
  const decodeEntry = async (w: unknown): Promise<void> => {
    if (!isPlainObject(w)) throw invalidManifest('entry is not a map')
    validateEntryPath(w.path)
    const path = w.path
    checkEntryType(w.type, path)
    if (w.type === 'dir') {
      checkKeys(w, DIR_KEYS, `entry ${path}`)
      entries.push({ type: 'dir', path, mode: w.mode as number })
      return
    }
    if (w.type === 'symlink') {
      checkKeys(w, LINK_KEYS, `entry ${path}`)
      entries.push({ type: 'symlink', path, target: w.target as string })
      return
    }
    checkKeys(w, FILE_KEYS, `entry ${path}`)
    // The declared sizes bound the work: every chunk holds at least one byte, so a running sum
    // past the file's size (or files past the manifest's totalSize) stops expansion at once,
    // before the next chunk list is fetched.
    const size = checkInt(w.size, `size of ${path}`, 0, MANIFEST_LIMITS.maxTotalSize)
    declared.sum += size
    if (declared.sum > declared.total) throw sizeMismatch(`files hold more than the declared totalSize ${declared.total} (at ${path})`, path)
    const chunks: ChunkRef[] = []
    const entry: FileEntry = { type: 'file', path, mode: w.mode as number, size, chunks }
    const list = newList?.()
    const total: ChunkTotals = { count: 0, sum: 0 }
    const take = (refs: unknown[]): void => {
      for (const c of refs) {
        const chunkSize = checkChunkRef(c, path)
        total.sum += chunkSize
        if (total.sum > size) throw sizeMismatch(`file ${path} declares ${size} bytes but its chunks hold more`, path)
        if (list === undefined) chunks.push(c as ChunkRef)
        else list.add((c as ChunkRef)[0], chunkSize)
      }
      total.count += refs.length
    }
    if (w.chunks !== undefined && w.chunkLists === undefined) {
      if (!Array.isArray(w.chunks) || w.chunks.length > INLINE_CHUNKS) throw invalidManifest(`file ${path}: bad inline chunk list`)
      take(w.chunks)
    } else if (w.chunkLists !== undefined && w.chunks === undefined) {
      const cids = checkCidList(w.chunkLists, `chunkLists of ${path}`, MANIFEST_LIMITS.maxChunkPagesPerFile)
      for (const cid of cids) {
        // a list holds at least one chunk of at least one byte: a full file takes no more lists
        if (total.sum >= size) throw sizeMismatch(`file ${path} names more chunk lists than its ${size} bytes need`, path)
        const l = await fetchStructured(cid, source, options.signal, budget)
        listCids.push(cid)
        checkKeys(l, ['format', 'chunks'], 'chunk list')
        if (l.format !== CHUNK_LIST_FORMAT || !Array.isArray(l.chunks) || l.chunks.length === 0 || l.chunks.length > CHUNKS_PER_PAGE) throw invalidManifest(`file ${path}: malformed chunk list`)
        if (total.count + l.chunks.length > MANIFEST_LIMITS.maxChunksPerFile) throw invalidManifest(`file ${path} has too many chunks`)
        take(l.chunks)
      }
    } else {
      throw invalidManifest(`file ${path} needs exactly one of chunks and chunkLists`)
    }
    if (list !== undefined) {
      lists.set(entry, list)
      totals.set(entry, total)
    }
    entries.push(entry)
  }

  const r = await fetchStructured(root, source, options.signal, budget)
  checkKeys(r, ROOT_KEYS, 'manifest')
  if (r.format !== MANIFEST_FORMAT) throw invalidManifest(`not a swarmpack manifest (format ${JSON.stringify(String(r.format).slice(0, 64))})`)
  declared.total = checkInt(r.totalSize, 'totalSize', 0, MANIFEST_LIMITS.maxTotalSize)
  const entryCount = checkInt(r.entryCount, 'entryCount', 0, MANIFEST_LIMITS.maxEntries)
  let seen = 0
  if (r.entries !== undefined && r.pages !== undefined) throw invalidManifest('both entries and pages')
  if (r.entries !== undefined) {
    if (!Array.isArray(r.entries)) throw invalidManifest('entries is not a list')
    if (r.entries.length !== entryCount) throw invalidManifest(`entryCount ${entryCount} but ${r.entries.length} entries`)
    seen = r.entries.length
    for (const w of r.entries) await decodeEntry(w)
  } else {
    const pages = checkCidList(r.pages, 'pages', MANIFEST_LIMITS.maxPages)
    for (const cid of pages) {
      const p = await fetchStructured(cid, source, options.signal, budget)
      pageCids.push(cid)
      checkKeys(p, ['format', 'entries'], 'manifest page')
      if (p.format !== MANIFEST_PAGE_FORMAT || !Array.isArray(p.entries)) throw invalidManifest('malformed manifest page')
      if (seen + p.entries.length > entryCount) throw invalidManifest('pages hold more entries than entryCount')
      seen += p.entries.length
      // Each page's entries are decoded before the next page is fetched, so the wire form of
      // only one page is alive at a time.
      for (const w of p.entries) await decodeEntry(w)
    }
  }
  if (seen !== entryCount) throw invalidManifest(`entryCount ${entryCount} but ${seen} entries`)
  const manifest: Manifest = {
    name: r.name as string,
    version: r.version as string,
    description: checkString(r.description, 'description', MANIFEST_LIMITS.maxDescriptionLength),
    categories: r.categories as string[],
    tags: r.tags as string[],
    dependencies: r.dependencies as Record<string, string>,
    optionalDependencies: r.optionalDependencies as Record<string, string>,
    platform: r.platform as string,
    totalSize: r.totalSize as number,
    entries
  }
  if (r.variant !== undefined) manifest.variant = r.variant as string
  if (r.entry !== undefined) manifest.entry = r.entry as string
  validateManifest(manifest, newList === undefined ? undefined : e => totals.get(e))
  return { manifest, manifestBlocks: [root, ...pageCids, ...listCids], lists }
}

/** Decodes a manifest from its root CID; see loadManifest for the checks. */
export async function decodeManifest (root: CID, source: BlockGetter, options: DecodeManifestOptions = {}): Promise<Manifest> {
  return (await loadManifest(root, source, options)).manifest
}

/** Unique chunk CIDs of a manifest, in order of first use. */
export function manifestChunkCids (m: Manifest): CID[] {
  const seen = new Set<string>()
  const out: CID[] = []
  for (const e of m.entries) {
    if (e.type !== 'file') continue
    for (const [cid] of e.chunks) {
      const k = cid.toString()
      if (!seen.has(k)) { seen.add(k); out.push(cid) }
    }
  }
  return out
}

/** Every block CID a manifest reaches: its own blocks (root first) then each distinct chunk. */
export async function listManifestCids (root: CID, source: BlockGetter, options: DecodeManifestOptions = {}): Promise<CID[]> {
  const { manifest, manifestBlocks } = await loadManifest(root, source, options)
  return [...manifestBlocks, ...manifestChunkCids(manifest)]
}
