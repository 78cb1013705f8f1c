/**
 * The block store's index: one LMDB environment (`lmdb`, N-API prebuilt binaries) in
 * `<dir>/index.lmdb` with one table keyed by the block's store key (keys.ts):
 *
 *   index    key -> [size, used, segment, offset]: where the block's record is in the segment log
 *            (segments.ts), and what accounting and LRU order are loaded from on open without
 *            reading any block; `used` (ms since epoch) is the last persisted use
 *   ends     segment -> durable end: the bytes of the segment known synced when the entry was
 *            written (key 0: the format mark, see loadDurableEnds)
 *
 * The blocks themselves are not in LMDB: its memory map would count every page read or written
 * as the process's resident memory (1.3 GiB unpacking a 1 GiB package), see docs/benchmarks/core-store.md.
 * An entry is committed once its record is written to the segment file, while the record's sync
 * may still run (a put resolves only when both are done): after a power loss, an entry past its
 * segment's durable end may point at bytes that never reached the disk, so those are checked on open.
 */
import { open as openFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { open, type Database, type RootDatabase } from 'lmdb'
import { SwarmpackError } from '../errors.js'
import { StoreErrorCode, errnoOf, ioError } from './errors.js'
import { BLOCKS_DIR, flatKey } from './keys.js'

export const DATA_FILE = 'index.lmdb'
/** The database of the store before the segment log, which held the blocks themselves. */
export const OLD_DATA_FILE = 'store.lmdb'
/** A compacted copy being written; a leftover one (crash) is deleted on open. */
export const COMPACT_SUFFIX = '.compact'

/** [size in bytes, last persisted use in ms since epoch, segment, offset of the record] */
export type IndexValue = [number, number, number, number]

export interface StoreDb {
  /** The database file. */
  path: string
  durable: boolean
  env: RootDatabase
  index: Database<IndexValue, string>
  ends: Database<number, number>
}

/** The LMDB key of a store key: the key itself (a base32 CID string, 59 bytes). */
export function dbKeyOf (key: string): string {
  return key
}

/** The store key of an LMDB key, as a flat string of its own (the decoded key costs twice that in the index). */
export function keyOfDbKey (dbKey: string): string {
  return flatKey(dbKey)
}

/**
 * `durable`: every commit is synced (overlapped with the next transaction, lmdb's default).
 * Otherwise nothing is synced by the store (`noSync`): commits survive a process crash, but an
 * OS crash or power loss can lose recent ones or leave the file damaged.
 */
export async function openStoreDb (dir: string, durable = true, path = join(dir, DATA_FILE)): Promise<StoreDb> {
  await checkDataFile(path)
  try {
    const env = open({
      path,
      noSync: !durable,
      compression: false,
      // no value cache: the store keeps its own in-memory index
      cache: false
    })
    const index = env.openDB<IndexValue, string>({ name: 'index', encoding: 'msgpack' })
    const ends = env.openDB<number, number>({ name: 'ends', encoding: 'msgpack' })
    return { path, durable, env, index, ends }
  } catch (err) {
    throw ioError(`cannot open the block store database in ${dir}`, err)
  }
}

/** Key of the format mark in the ends table (segments are numbered from 1). */
const ENDS_MARK = 0
const ENDS_FORMAT = 1

/**
 * The durable end of every segment as the index recorded it. An index written before durable ends
 * existed (no mark) committed entries only after their records were synced: every byte of its
 * segments counts as durable (`sizes`).
 */
export function loadDurableEnds (db: StoreDb, sizes: ReadonlyMap<number, number>): Map<number, number> {
  if (db.ends.get(ENDS_MARK) !== ENDS_FORMAT) return new Map(sizes)
  const ends = new Map<number, number>()
  for (const { key, value } of db.ends.getRange()) if (key !== ENDS_MARK) ends.set(key, value)
  return ends
}

/**
 * Queues durable ends (undefined: the segment is gone), and the format mark with `mark`, in the
 * current write batch: called in the same turn as index puts, they commit in the same transaction.
 */
export function queueDurableEnds (db: StoreDb, ends: Iterable<[number, number | undefined]>, mark = false): Array<Promise<unknown>> {
  const writes: Array<Promise<unknown>> = mark ? [db.ends.put(ENDS_MARK, ENDS_FORMAT)] : []
  for (const [seg, end] of ends) writes.push(end === undefined ? db.ends.remove(seg) : db.ends.put(seg, end))
  return writes
}

/** LMDB's meta page: the magic number (0xBEEFC0DE, little endian) at this offset of pages 0 and 1. */
const META_MAGIC = 0xBEEFC0DE
const META_MAGIC_OFFSET = 24
const PAGE_SIZES = [4096, 8192, 16384, 32768, 65536]

/**
 * LMDB trusts its file: a damaged header (garbage, a truncated or foreign file) crashes the process
 * in native code rather than raising an error, so the two meta pages are checked before opening.
 * This catches a wrong or truncated file, not every damaged page: with fsync on LMDB never leaves a
 * damaged file after a crash; with fsync off a power loss can (see FsBlockstoreInit.fsync).
 */
export async function checkDataFile (path: string): Promise<void> {
  let head: Buffer
  let size: number
  try {
    const fh = await openFile(path, 'r')
    try {
      size = (await fh.stat()).size
      head = Buffer.alloc(Math.min(size, 65536 + 64))
      await fh.read(head, 0, head.length, 0)
    } finally {
      await fh.close()
    }
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return // a new store
    throw ioError(`cannot read ${path}`, err)
  }
  const magicAt = (off: number): boolean => head.length >= off + 4 && head.readUInt32LE(off) === META_MAGIC
  const ok = magicAt(META_MAGIC_OFFSET) && PAGE_SIZES.some(ps =>
    size >= 2 * ps && head.length >= ps + 32 && head.readBigUInt64LE(ps) === 1n && magicAt(ps + META_MAGIC_OFFSET))
  if (!ok) {
    throw new SwarmpackError(StoreErrorCode.STORE_CORRUPT,
      `the block store database ${path} is damaged (not a valid LMDB file); delete it, or the store directory (its blocks are a cache and are fetched again)`,
      { details: { path } })
  }
}

/**
 * A directory written by swarmpack's first store (one file per block under `blocks/`) is refused
 * rather than migrated: it is a cache, so the blocks are fetched again once the directory is cleared.
 */
export async function refuseOldLayout (dir: string): Promise<void> {
  const old = join(dir, BLOCKS_DIR)
  const st = await stat(old).catch((err: unknown) => {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined
    throw ioError(`cannot inspect ${dir}`, err)
  })
  if (st?.isDirectory() === true) {
    throw new SwarmpackError(StoreErrorCode.STORE_FORMAT,
      `${dir} holds a block store in the old one-file-per-block layout (${old}); remove that directory (its blocks are a cache and are fetched again) or open a new store directory`,
      { details: { dir, found: old } })
  }
  const oldDb = join(dir, OLD_DATA_FILE)
  if (await stat(oldDb).then(() => true, () => false)) {
    throw new SwarmpackError(StoreErrorCode.STORE_FORMAT,
      `${dir} holds a block store in the older all-in-LMDB layout (${oldDb}); remove that file and ${oldDb}-lock (its blocks are a cache and are fetched again) or open a new store directory`,
      { details: { dir, found: oldDb } })
  }
}

function pagesOf (stats: Record<string, number>): number {
  return (stats.treeBranchPageCount ?? 0) + (stats.treeLeafPageCount ?? 0) + (stats.overflowPages ?? 0)
}

/** Index file size and the bytes of it in use (pages of every table, LMDB's own included). */
export async function diskUsageOf (db: StoreDb): Promise<{ fileBytes: number, usedBytes: number }> {
  const fileBytes = (await stat(db.path)).size
  const envStats = db.env.getStats() as Record<string, number> & { root: Record<string, number>, free: Record<string, number> }
  const pageSize = envStats.pageSize
  // two meta pages, the main table (names of the tables), the free list, the index and the ends
  const pages = 2 + pagesOf(envStats.root) + pagesOf(envStats.free) +
    pagesOf(db.index.getStats() as Record<string, number>) + pagesOf(db.ends.getStats() as Record<string, number>)
  return { fileBytes, usedBytes: Math.min(fileBytes, pages * pageSize) }
}

/** Entries copied between waits for the copy's commits (bounds the memory a compaction queues). */
const COMPACT_BATCH = 256

/**
 * Copies every live entry into a fresh database next to the file (which holds no free pages),
 * syncs it, closes the database, renames the copy over the file and opens it again. The caller
 * keeps every other access out meanwhile. (Not LMDB's own compacting copy, `backup(path, true)`:
 * with lmdb 3.5 a database it wrote hit an assertion in mdb_page_alloc on the next delete here.)
 */
export async function compactInto (db: StoreDb, dir: string): Promise<StoreDb> {
  const path = join(dir, DATA_FILE)
  const tmp = path + COMPACT_SUFFIX
  try {
    await db.env.flushed
    await removeCopy(tmp)
    const copy = await openStoreDb(dir, true, tmp)
    try {
      let n = 0
      let last: Promise<unknown> = Promise.resolve()
      // the ends first: in the first transaction, with no second one freeing the pages it wrote
      for (const { key, value } of db.ends.getRange()) last = copy.ends.put(key, value)
      for (const { key, value } of db.index.getRange()) {
        last = copy.index.put(key, value)
        if (++n % COMPACT_BATCH === 0) await last
      }
      await last
      await copy.env.flushed
    } finally {
      await copy.env.close()
    }
  } catch (err) {
    await removeCopy(tmp).catch(() => {})
    throw ioError(`cannot compact the block store in ${dir}`, err)
  }
  await db.env.close()
  try {
    await rename(tmp, path)
    await rm(tmp + LOCK_SUFFIX, { force: true })
    const dh = await openFile(dir, 'r')
    try { await dh.sync() } finally { await dh.close() }
  } catch (err) {
    // the old file is still in place and whole: carry on with it
    await removeCopy(tmp).catch(() => {})
    const reopened = await openStoreDb(dir, db.durable)
    throw Object.assign(ioError(`cannot compact the block store in ${dir}`, err), { reopened })
  }
  return await openStoreDb(dir, db.durable)
}

/** LMDB's lock file next to a database file. */
const LOCK_SUFFIX = '-lock'

/** Removes a compacted copy and its lock file (a crash can leave them; see FsBlockstore.open). */
export async function removeCopy (tmp: string): Promise<void> {
  await rm(tmp, { force: true })
  await rm(tmp + LOCK_SUFFIX, { force: true })
}
