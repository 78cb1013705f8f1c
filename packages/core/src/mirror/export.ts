/**
 * exportMirror: writes every block the given roots reach, from a store into the static mirror
 * layout (layout.ts), plus the descriptor and the probe file. Each file is written atomically;
 * the export is idempotent and resumable: blocks already present with the right bytes are skipped,
 * a present file with wrong bytes is replaced.
 */
import { mkdir, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { logger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { MAX_BLOCK_SIZE, verifyBlock } from '../block.js'
import { CoreErrorCode, SwarmpackError, throwIfAborted } from '../errors.js'
import { removeTempFiles, writeFileAtomic } from '../store/atomic.js'
import { StoreErrorCode, errnoOf, ioError } from '../store/errors.js'
import { readBlock, type BlockSource } from '../store/provider.js'
import { walkDag } from '../store/walk.js'
import { MAX_INDEX_HEAD_SIZE, MIRROR_BLOCKS_DIR, MIRROR_DESCRIPTOR, PROBE_CID, mirrorBlockPath, mirrorDescriptor, mirrorIndexHeadPath, parseMirrorDescriptor } from './layout.js'

const log = logger('swarmpack:mirror')

export interface MirrorExportBlockDetail {
  cid: CID
  size: number
  /** false when the mirror already held the block. */
  written: boolean
  blocks: number
  bytes: number
}

export type MirrorExportProgressEvents = ProgressEvent<'swarmpack:mirror:block', MirrorExportBlockDetail>

export interface ExportMirrorOptions extends ProgressOptions<MirrorExportProgressEvents> {
  signal?: AbortSignal
  /** fsync each file before renaming it into place. Default true. */
  fsync?: boolean
}

export interface ExportMirrorReport {
  /** Blocks the roots reach. */
  blocks: number
  /** Their total size. */
  bytes: number
  written: number
  skipped: number
}

/** Temp files older than this are leftovers of a crashed export (a live one renames within seconds). */
const STALE_TEMP_MS = 60 * 60 * 1000

/**
 * Exports `roots` and everything they reach from `store` into the mirror directory `dir`. Every
 * block is verified against its CID before it is written; a block the store lacks raises
 * ERR_NOT_FOUND (after the blocks before it were written: a rerun completes the export).
 */
export async function exportMirror (store: BlockSource, roots: CID[], dir: string, options: ExportMirrorOptions = {}): Promise<ExportMirrorReport> {
  if (!Array.isArray(roots)) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'roots must be an array of CIDs')
  const { signal } = options
  const fsync = options.fsync ?? true
  const blocksDir = join(dir, MIRROR_BLOCKS_DIR)
  try {
    await mkdir(blocksDir, { recursive: true })
  } catch (err) {
    throw ioError(`cannot create mirror ${dir}`, err)
  }
  await removeTempFiles(blocksDir, STALE_TEMP_MS)
  await writeDescriptor(dir, fsync)
  await writeIfChanged(join(blocksDir, PROBE_CID), new Uint8Array(0), fsync, existing => existing.byteLength === 0)

  const report: ExportMirrorReport = { blocks: 0, bytes: 0, written: 0, skipped: 0 }
  const read = async (cid: CID): Promise<Uint8Array> => {
    const bytes = await readBlock(store, cid, { signal })
    verifyBlock(cid, bytes)
    return bytes
  }
  for await (const { cid, bytes } of walkDag(roots, read, { signal })) {
    throwIfAborted(signal)
    const written = await writeIfChanged(join(dir, mirrorBlockPath(cid)), bytes, fsync, existing => {
      try { verifyBlock(cid, existing); return true } catch { return false }
    }, bytes.byteLength)
    report.blocks++
    report.bytes += bytes.byteLength
    if (written) report.written++
    else report.skipped++
    options.onProgress?.(new CustomProgressEvent('swarmpack:mirror:block', { cid, size: bytes.byteLength, written, blocks: report.blocks, bytes: report.bytes }))
  }
  log('exported %d blocks (%d bytes) to %s: %d written, %d already there', report.blocks, report.bytes, dir, report.written, report.skipped)
  return report
}

/**
 * Writes the descriptor, or keeps the one there. A descriptor this version can't read (another
 * layout, or damaged) is refused rather than overwritten: the directory may belong to something else.
 */
async function writeDescriptor (dir: string, fsync: boolean): Promise<void> {
  const path = join(dir, MIRROR_DESCRIPTOR)
  let existing: string | undefined
  try {
    existing = await readFile(path, 'utf8')
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw ioError(`cannot read ${path}`, err)
  }
  if (existing !== undefined) {
    if (parseMirrorDescriptor(existing) !== undefined) return
    throw new SwarmpackError(StoreErrorCode.MIRROR_INVALID, `${path} describes a mirror layout this version does not know; not exporting into it`, { details: { dir } })
  }
  try {
    await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(mirrorDescriptor()) + '\n'), { fsync })
  } catch (err) {
    throw ioError(`cannot write ${path}`, err)
  }
}

/**
 * Writes `bytes` at `path` unless a file there already passes `valid`. `expectedSize` lets the check
 * skip reading files of the wrong size. Returns whether it wrote.
 */
async function writeIfChanged (path: string, bytes: Uint8Array, fsync: boolean, valid: (existing: Uint8Array) => boolean, expectedSize?: number): Promise<boolean> {
  try {
    const st = await stat(path)
    if (st.isFile() && st.size <= MAX_BLOCK_SIZE && (expectedSize === undefined || st.size === expectedSize)) {
      if (valid(await readFile(path))) return false
    }
  } catch (err) {
    // absent (the usual case) or unreadable: (re)write it; a real I/O problem shows on the write
    if (errnoOf(err) !== 'ENOENT') log('cannot check %s, rewriting it: %s', path, (err as Error).message)
  }
  try {
    await writeFileAtomic(path, bytes, { fsync })
  } catch (err) {
    throw ioError(`cannot write ${path}`, err)
  }
  return true
}

/**
 * Publishes an indexer's signed head record in a mirror (`indexes/<indexer-id>/head`), atomically.
 * The bytes are stored as given (they are signed); readers verify them.
 */
export async function writeMirrorIndexHead (dir: string, indexerId: string, bytes: Uint8Array, options: { fsync?: boolean } = {}): Promise<void> {
  let rel: string
  try {
    rel = mirrorIndexHeadPath(indexerId)
  } catch (err) {
    throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `invalid indexer id ${JSON.stringify(String(indexerId).slice(0, 80))}`, { cause: err })
  }
  if (!(bytes instanceof Uint8Array) || bytes.byteLength > MAX_INDEX_HEAD_SIZE) {
    throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `an index head must be a Uint8Array of at most ${MAX_INDEX_HEAD_SIZE} bytes`)
  }
  const path = join(dir, ...rel.split('/'))
  try {
    await mkdir(dirname(path), { recursive: true })
    await writeFileAtomic(path, bytes, { fsync: options.fsync ?? true })
  } catch (err) {
    throw ioError(`cannot write ${path}`, err)
  }
}
