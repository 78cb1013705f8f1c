/**
 * FsBlockstore: the content-addressed disk cache shared by all packages and versions.
 *
 *   <dir>/segments/*.seg    every block, appended to segment files of 64 MiB (segments.ts)
 *   <dir>/index.lmdb        an index entry per block: size, last use, where its record is (db.ts)
 *   <dir>/index.lmdb-lock   LMDB's reader table
 *   <dir>/pins.json         named pins (pins.ts)
 *   <dir>/store.lock        owner pid (lock.ts): one writer process per store
 *
 * It implements the interface-blockstore v7 contract, so Helia and other IPFS components can use it,
 * and adds what a package cache needs: verified writes, size accounting, pins, LRU eviction above
 * `maxSize`, `gc` (with compaction), `verify`, and "block added/removed" events for a Bitswap server.
 *
 * Why this layout (see docs/benchmarks/core-store.md for the measurements): many blocks per file
 * and group commit. Puts are queued and written in batches (group-commit.ts): one append to the
 * segment, then its data sync and one index transaction (and its sync) side by side, per batch
 * rather than per block, while the next batch is written; every `put` resolves once both syncs of
 * its batch are done (`fsync` on) or its entries are committed (off). An index entry is committed
 * only after its record is written, so after a SIGKILL every indexed block is whole; the index also
 * keeps each segment's durable end (bytes known synced), and on open every entry past it (a power
 * loss may have kept the entry but not its record's bytes) is hashed and dropped if it fails. The
 * records of an interrupted batch are cut off on the next open. Reads are `pread`s, not a memory
 * map: resident memory stays flat however much of the store is read or written.
 *
 * The in-memory index (key -> size, in LRU order) is loaded from the index table on open and kept
 * up to date incrementally. Recency survives restarts through the index entries' `used` time,
 * rewritten (unflushed, batched) at most once per `recencyInterval` per block.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
/** The interface-store options shape, without depending on abort-error directly. */
export interface AbortOptions { signal?: AbortSignal }
import type { Blockstore, InputPair, Pair } from 'interface-blockstore'
import { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { DAG_CBOR_CODEC, IDENTITY_CODE, MAX_BLOCK_SIZE, RAW_CODEC, SHA2_256_CODE, blockLinks, verifyBlock } from '../block.js'
import { CoreErrorCode, SwarmpackError, isSwarmpackError, throwIfAborted } from '../errors.js'
import { COMPACT_SUFFIX, DATA_FILE, compactInto, dbKeyOf, diskUsageOf, keyOfDbKey, loadDurableEnds, openStoreDb, queueDurableEnds, refuseOldLayout, removeCopy, type IndexValue, type StoreDb } from './db.js'
import { BlockNotFoundError, StoreErrorCode, ioError } from './errors.js'
import { GroupCommit, type BatchWrite } from './group-commit.js'
import { blockKey } from './keys.js'
import { SegmentLog, recordLength, type Location, type RecordIn } from './segments.js'
import { acquireLock } from './lock.js'
import { checkPinName, loadPins, savePins } from './pins.js'

const log = logger('swarmpack:store')

export interface FsBlockstoreInit {
  /** Bytes of blocks to keep at most; above it unpinned blocks are evicted, least recently used first. Default: no limit. */
  maxSize?: number
  /**
   * Durable writes: a `put` resolves once the batch holding its block is synced to disk. Default
   * true. Off, nothing is synced (segments are written unsynced, LMDB runs `noSync`): a `put` resolves once committed, which survives a
   * process crash (SIGKILL included), but an OS crash or power loss can lose recent writes or damage
   * the index file beyond use; the store is a cache, so the remedy is to delete the directory.
   * For scratch stores and benchmarks; a node's cache keeps it on.
   */
  fsync?: boolean
  /** A read refreshes a block's persisted recency at most this often, in ms. Default 60 000. */
  recencyInterval?: number
  /** Take the directory's lock file (refuse a second live opener). Default true. */
  lock?: boolean
  /** Size at which a segment file is closed and the next one started. Default 64 MiB. */
  segmentBytes?: number
}

export interface BlockEventDetail {
  cid: CID
  size: number
}

export interface StoreStats {
  /** Sum of the sizes of all stored blocks. */
  bytes: number
  /** Number of stored blocks. */
  blocks: number
  maxSize: number
  pins: number
}

export interface DiskUsage {
  /** Size of the store's files on disk: the segment files and the index. */
  fileBytes: number
  /** Bytes of them in use: the records of stored blocks, and the index's pages. */
  usedBytes: number
  /** Space of removed blocks still in the files: returned to the file system by `compact` (and gc). */
  reusableBytes: number
}

export interface GetBytesOptions extends AbortOptions {
  /** Re-hash the bytes; a block that fails is removed and ERR_CORRUPT_BLOCK is raised. */
  verify?: boolean
  /** Count this read as a use for LRU eviction. Default true (false for scans such as `getAll`). */
  touch?: boolean
}

export interface CorruptBlock {
  cid: CID
  reason: string
}

export type StoreProgressEvents =
  ProgressEvent<'swarmpack:store:verify', { cid: CID, checked: number, total: number, ok: boolean }> |
  ProgressEvent<'swarmpack:store:remove', { cid: CID, size: number, reason: 'gc' | 'evict' | 'corrupt' }>

export interface VerifyOptions extends AbortOptions, ProgressOptions<StoreProgressEvents> {}

export interface VerifyReport {
  checked: number
  /** Blocks that failed the hash check or could not be read; all were removed. */
  corrupt: CorruptBlock[]
  /** CIDs reachable from pins that are not in the store (never fetched, or just removed as corrupt). */
  missingPinned: CID[]
}

export interface GcOptions extends AbortOptions, ProgressOptions<StoreProgressEvents> {
  /** Stop once the store holds at most this many bytes. Default: remove every unpinned block. */
  targetSize?: number
  /**
   * Give the space of removed blocks back to the file system afterwards (compaction):
   * true always, false never, 'auto' (default) when at least a quarter of the file and 16 MiB are free.
   */
  compact?: boolean | 'auto'
}

export interface GcReport {
  removedBlocks: number
  removedBytes: number
  bytes: number
  blocks: number
  /** Whether the store was compacted, and its size on disk afterwards. */
  compacted: boolean
  fileBytes: number
}

/** Store key -> codec of every CID the pins reach (codes, not CID objects: this can hold millions). */
type PinnedSet = Map<string, number>

interface Entry extends Location {
  /** The index's own key string: a touch re-inserts it, not the caller's copy (which would be kept instead). */
  key: string
  size: number
  /** When the persisted recency (the index entry's `used`) was last written, ms since epoch. */
  persisted: number
}

/** Records of one segment that the index points to. */
interface Live {
  count: number
  /** Bytes of those records (headers included). */
  bytes: number
}

export interface FsBlockstoreEvents {
  'block:added': CustomEvent<BlockEventDetail>
  'block:removed': CustomEvent<BlockEventDetail>
}

/** Compaction in 'auto' mode: only when this share of the file, and at least AUTO_COMPACT_MIN bytes, are free. */
const AUTO_COMPACT_SHARE = 0.25
const AUTO_COMPACT_MIN = 16 * 1024 * 1024
/** Bytes of records compaction copies per batch (one append, one index commit). */
const COMPACT_BATCH_BYTES = 8 * 1024 * 1024

export class FsBlockstore extends EventTarget implements Blockstore {
  /** A put's bytes are written out and not referenced once it settles: pack may reuse its buffers. */
  readonly releasesPutBytes = true
  readonly dir: string
  readonly maxSize: number
  readonly #fsync: boolean
  readonly #recencyInterval: number
  readonly #segmentBytes: number | undefined
  #db!: StoreDb
  #log!: SegmentLog
  readonly #commit: GroupCommit<RecordIn, Location>
  /** seg -> what of it is live; a segment not here has no live record. */
  readonly #live = new Map<number, Live>()
  /** key -> entry, in access order: the first entry is the least recently used. */
  readonly #index = new Map<string, Entry>()
  readonly #writing = new Map<string, Promise<void>>()
  /** Set while compaction moves records and swaps the index file: every access waits for it. */
  #maintenance: Promise<void> | undefined
  #bytes = 0
  /** Counts writes, so a pin walk can tell whether blocks arrived while it ran. */
  #writes = 0
  #pins = new Map<string, CID>()
  /** Keys reachable from the pins (present or not) with their codecs; undefined when it must be recomputed. */
  #pinned: PinnedSet | undefined
  #pinnedComputing: Promise<PinnedSet> | undefined
  #pinsWrite: Promise<void> = Promise.resolve()
  #evicting: Promise<void> | undefined
  /**
   * Set when an eviction pass ended over the limit: then every block outside `candidates` is
   * pinned, so later passes visit only the candidates (blocks written since) instead of the whole
   * index on every put. Cleared when a pin is removed or replaced.
   */
  #stuck: { candidates: Set<string> } | undefined
  #releaseLock: (() => Promise<void>) | undefined
  #closed = false

  private constructor (dir: string, init: FsBlockstoreInit) {
    super()
    this.dir = dir
    this.maxSize = init.maxSize ?? Number.POSITIVE_INFINITY
    this.#fsync = init.fsync ?? true
    this.#recencyInterval = init.recencyInterval ?? 60_000
    this.#segmentBytes = init.segmentBytes
    this.#commit = new GroupCommit(async records => await this.#writeBatch(records))
  }

  /**
   * Opens (creating if needed) the store in `dir`: takes the lock, loads pins and the index.
   * ERR_STORE_LOCKED if another process has it open, ERR_STORE_FORMAT for a directory written by
   * the one-file-per-block store of swarmpack 0.1 (see refuseOldLayout).
   */
  static async open (dir: string, init: FsBlockstoreInit = {}): Promise<FsBlockstore> {
    if (typeof dir !== 'string' || dir === '') throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'store directory must be a non-empty string')
    if (init.maxSize !== undefined && !(init.maxSize >= 0)) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `invalid maxSize ${init.maxSize}`)
    if (init.segmentBytes !== undefined && !(init.segmentBytes >= 1)) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `invalid segmentBytes ${init.segmentBytes}`)
    await mkdir(dir, { recursive: true }).catch((err: unknown) => { throw ioError(`cannot create block store ${dir}`, err) })
    await refuseOldLayout(dir)
    const store = new FsBlockstore(dir, init)
    if (init.lock !== false) store.#releaseLock = await acquireLock(dir)
    try {
      store.#pins = await loadPins(dir)
      // a compaction a crash interrupted: the old file is still the store
      await removeCopy(join(dir, DATA_FILE + COMPACT_SUFFIX))
      store.#db = await openStoreDb(dir, store.#fsync)
      store.#log = await SegmentLog.open(dir, { durable: store.#fsync, maxSegmentBytes: store.#segmentBytes })
      await store.#load()
    } catch (err) {
      await store.#log?.close().catch(() => {})
      await store.#db?.env.close().catch(() => {})
      await store.#releaseLock?.()
      throw err
    }
    log('opened %s: %d blocks, %d bytes, %d pins', dir, store.#index.size, store.#bytes, store.#pins.size)
    if (store.#bytes > store.maxSize) await store.#evict()
    return store
  }

  /**
   * Builds the in-memory index from the index table, oldest use first. An entry whose record
   * lies outside its segment file (outside edits, a lost file) is dropped, and so is one past its
   * segment's durable end whose record does not hash to its key (its bytes were written but a
   * power loss came before their sync); then the segment log deletes segments nothing points into
   * and cuts a batch a crash interrupted off the newest one.
   */
  async #load (): Promise<void> {
    const found: Entry[] = []
    const orphans: string[] = []
    const sizes = this.#log.sizes()
    const durable = loadDurableEnds(this.#db, sizes)
    const ends = new Map<number, number>()
    let unsynced = 0
    for (const { key, value } of this.#db.index.getRange()) {
      const [size, used, seg, off] = value
      const end = off + recordLength(key, size)
      if (!(end <= (sizes.get(seg) ?? -1))) { orphans.push(key); continue }
      const entry: Entry = { key: keyOfDbKey(key), size, persisted: used, seg, off }
      if (end > (durable.get(seg) ?? 0)) {
        unsynced++
        const bytes = this.#read(entry.key, entry)
        if (typeof bytes === 'string' || this.#check(entry.key, bytes) !== undefined) { orphans.push(key); continue }
      }
      found.push(entry)
      ends.set(seg, Math.max(ends.get(seg) ?? 0, end))
    }
    found.sort((a, b) => a.persisted - b.persisted)
    for (const entry of found) {
      this.#index.set(entry.key, entry)
      this.#bytes += entry.size
      this.#addLive(entry.key, entry)
    }
    if (orphans.length > 0) {
      log.error('dropping %d index entries whose records are gone or damaged (%d past a durable end checked)', orphans.length, unsynced)
      await Promise.all(orphans.map(async k => await this.#db.index.remove(k)))
    }
    const recovered = await this.#log.recover(ends)
    if (recovered.deleted > 0 || recovered.truncatedBytes > 0) {
      log('recovered %s: %d segments without live records deleted, %d bytes of an unfinished batch cut', this.dir, recovered.deleted, recovered.truncatedBytes)
    }
    // records checked above may be in the page cache only: synced now, they count as durable
    this.#log.setDurableEnds(durable)
    try {
      await this.#log.syncPastDurableEnds()
      await Promise.all(queueDurableEnds(this.#db, this.#log.takeDurableEnds(), true))
      if (this.#fsync) await this.#db.env.flushed
    } catch (err) {
      throw ioError(`cannot record the durable ends of the segments in ${this.dir}`, err)
    }
  }

  #addLive (key: string, entry: Entry): void {
    const live = this.#live.get(entry.seg) ?? { count: 0, bytes: 0 }
    live.count++
    live.bytes += recordLength(key, entry.size)
    this.#live.set(entry.seg, live)
  }

  /** Drops a record from the live count; true when its segment has none left. */
  #dropLive (key: string, entry: Entry): boolean {
    const live = this.#live.get(entry.seg)
    if (live === undefined) return false
    live.count--
    live.bytes -= recordLength(key, entry.size)
    if (live.count > 0) return false
    this.#live.delete(entry.seg)
    return true
  }

  #assertOpen (): void {
    if (this.#closed) throw new SwarmpackError(StoreErrorCode.STORE_CLOSED, `block store ${this.dir} is closed`)
  }

  /** The store key of a CID argument; ERR_INVALID_ARGUMENT for anything that is not a CID. */
  #keyOf (cid: CID): string {
    if (CID.asCID(cid) === null) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'expected a CID')
    return blockKey(cid)
  }

  /** Size accounting, kept up to date on every change. */
  stats (): StoreStats {
    return { bytes: this.#bytes, blocks: this.#index.size, maxSize: this.maxSize, pins: this.#pins.size }
  }

  /** What the store takes on disk, and how much of it is the dead space of removed blocks. */
  async diskUsage (): Promise<DiskUsage> {
    this.#assertOpen()
    await this.#maintenance
    return await this.#usage()
  }

  async #usage (): Promise<DiskUsage> {
    const index = await diskUsageOf(this.#db)
    let fileBytes = index.fileBytes
    let usedBytes = index.usedBytes
    for (const size of this.#log.sizes().values()) fileBytes += size
    for (const live of this.#live.values()) usedBytes += live.bytes
    return { fileBytes, usedBytes, reusableBytes: Math.max(0, fileBytes - usedBytes) }
  }

  // ---------------------------------------------------------------- events

  /** Calls `listener` for every block stored from now on; returns the unsubscribe function. */
  onBlockAdded (listener: (detail: BlockEventDetail) => void): () => void {
    // Node reports a throwing EventTarget listener as an uncaught exception: contain it here
    const handler = (evt: Event): void => {
      try {
        listener((evt as CustomEvent<BlockEventDetail>).detail)
      } catch (err) {
        log.error('block:added listener threw: %e', err)
      }
    }
    this.addEventListener('block:added', handler)
    return () => { this.removeEventListener('block:added', handler) }
  }

  #emit (type: keyof FsBlockstoreEvents, detail: BlockEventDetail): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }

  // ---------------------------------------------------------------- reads

  has (cid: CID, options: AbortOptions = {}): boolean {
    this.#assertOpen()
    throwIfAborted(options.signal)
    const key = this.#keyOf(cid)
    if (cid.multihash.code === IDENTITY_CODE) return true
    return this.#index.has(key)
  }

  /** The whole block. ERR_NOT_FOUND (name `NotFoundError`) when absent. */
  async getBytes (cid: CID, options: GetBytesOptions = {}): Promise<Uint8Array> {
    const key = this.#argument(cid, options)
    if (cid.multihash.code === IDENTITY_CODE) return cid.multihash.digest
    let bytes: Uint8Array | undefined
    await this.#readBlock(cid, key, options, entry => {
      const read = this.#read(key, entry)
      if (typeof read !== 'string') bytes = read
      return read
    })
    return bytes as Uint8Array
  }

  /**
   * Reads a block into the start of `target` instead of a buffer of its own (unpack writes files
   * from one reused buffer this way: no allocation per block) and returns the block's size. When
   * the block is larger than `target`, nothing is read and its size is returned all the same.
   * Errors as `getBytes`.
   */
  async readInto (cid: CID, target: Uint8Array, options: GetBytesOptions = {}): Promise<number> {
    const key = this.#argument(cid, options)
    if (!(target instanceof Uint8Array)) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'readInto needs a Uint8Array to read into')
    if (cid.multihash.code === IDENTITY_CODE) {
      const digest = cid.multihash.digest
      if (digest.byteLength <= target.byteLength) target.set(digest)
      return digest.byteLength
    }
    let size = 0
    await this.#readBlock(cid, key, options, entry => {
      size = entry.size
      if (size > target.byteLength) return undefined
      const view = target.subarray(0, size)
      return this.#log.readInto(entry, key, view) ?? view
    })
    return size
  }

  /** Checks a read's arguments and returns the CID's store key. */
  #argument (cid: CID, options: AbortOptions): string {
    this.#assertOpen()
    throwIfAborted(options.signal)
    return this.#keyOf(cid)
  }

  /**
   * The read path of getBytes and readInto: `read` reads the indexed record and returns its bytes
   * (undefined when it read nothing) or why they are not the block; a damaged block is removed and
   * raises ERR_CORRUPT_BLOCK.
   */
  async #readBlock (cid: CID, key: string, options: GetBytesOptions, read: (entry: Entry) => Uint8Array | string | undefined): Promise<void> {
    if (this.#maintenance !== undefined) await this.#maintenance
    const entry = this.#index.get(key)
    if (entry === undefined) throw new BlockNotFoundError(cid.toString(), this.dir)
    // the record's header (key and size) is checked on every read: a misplaced, cut or
    // overwritten record is caught without hashing; `verify` hashes the bytes too
    const bytes = read(entry)
    const reason = typeof bytes === 'string' ? bytes : options.verify === true && bytes !== undefined ? this.#check(key, bytes) : undefined
    if (reason !== undefined) {
      await this.#removeCorrupt(key)
      throw new SwarmpackError(CoreErrorCode.CORRUPT_BLOCK, `stored block ${cid.toString()} is corrupt (${reason}); removed`, { details: { cid: cid.toString(), reason } })
    }
    if (options.touch !== false) this.#touch(key, entry)
  }

  /** The stored bytes of an indexed block (a synchronous pread), or why they cannot be read. */
  #read (key: string, entry: Entry): Uint8Array | string {
    return this.#log.read(entry, key, entry.size)
  }

  /** interface-blockstore `get`: the block as a generator of chunks (one chunk: blocks are at most 1 MiB). */
  async * get (cid: CID, options: AbortOptions = {}): AsyncGenerator<Uint8Array> {
    yield await this.getBytes(cid, options)
  }

  async * getMany (source: Iterable<CID> | AsyncIterable<CID>, options: AbortOptions = {}): AsyncGenerator<Pair> {
    for await (const cid of source) {
      const bytes = await this.getBytes(cid, options)
      yield { cid, bytes: single(bytes) }
    }
  }

  /** Every stored block, under its raw CID (the store is keyed by multihash), in no particular order. */
  async * getAll (options: AbortOptions = {}): AsyncGenerator<Pair> {
    this.#assertOpen()
    for (const key of [...this.#index.keys()]) {
      throwIfAborted(options.signal)
      const cid = CID.parse(key)
      let bytes: Uint8Array
      try {
        bytes = await this.getBytes(cid, { ...options, touch: false })
      } catch (err) {
        if (isSwarmpackError(err, CoreErrorCode.NOT_FOUND) || isSwarmpackError(err, CoreErrorCode.CORRUPT_BLOCK)) continue
        throw err
      }
      yield { cid, bytes: single(bytes) }
    }
  }

  #touch (key: string, entry: Entry): void {
    // move to the most-recently-used end
    this.#index.delete(key)
    this.#index.set(entry.key, entry)
    const now = Date.now()
    if (now - entry.persisted >= this.#recencyInterval && this.#maintenance === undefined) {
      entry.persisted = now
      // batched with other writes, never awaited: recency only orders eviction
      const value: IndexValue = [entry.size, now, entry.seg, entry.off]
      this.#db.index.put(dbKeyOf(key), value).catch((err: unknown) => { log.error('cannot persist recency of %s: %e', key, err) })
    }
  }

  /** undefined when `bytes` is the block named by `key`, else why not. */
  #check (key: string, bytes: Uint8Array): string | undefined {
    try {
      verifyBlock(CID.parse(key), bytes)
      return undefined
    } catch (err) {
      return isSwarmpackError(err) ? err.code : String(err)
    }
  }

  // ---------------------------------------------------------------- writes

  /**
   * Stores a block after checking that its bytes hash to the CID (ERR_BLOCK_MISMATCH otherwise,
   * ERR_BLOCK_TOO_LARGE above 1 MiB, ERR_UNSUPPORTED_CID for a hash other than sha2-256). Any codec
   * is accepted, since the store is keyed by multihash (Helia may store dag-pb). The check reuses
   * the digest core computed for these very bytes (a receive path's verifyBlock, pack's rawCid):
   * see `sha256Of` in block.ts. Resolves once the block is durable (see `fsync`).
   */
  async put (cid: CID, val: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options: AbortOptions = {}): Promise<CID> {
    this.#assertOpen()
    throwIfAborted(options.signal)
    const bytes = await collect(val, options.signal)
    checkHash(cid, bytes)
    if (cid.multihash.code === IDENTITY_CODE) return cid // inline: nothing to store
    return await this.#store(cid, bytes)
  }

  async #store (cid: CID, bytes: Uint8Array): Promise<CID> {
    const key = blockKey(cid)
    const existing = this.#index.get(key)
    if (existing !== undefined) {
      this.#touch(key, existing)
      return cid
    }
    const pending = this.#writing.get(key)
    if (pending !== undefined) {
      await pending
      return cid
    }
    const write = this.#write(key, cid, bytes)
    this.#writing.set(key, write)
    try {
      await write
    } finally {
      this.#writing.delete(key)
    }
    if (this.#bytes > this.maxSize) await this.#evict(key)
    return cid
  }

  async #write (key: string, cid: CID, bytes: Uint8Array): Promise<void> {
    if (this.#maintenance !== undefined) await this.#maintenance
    let entry: Entry
    try {
      const loc = await this.#commit.submit({ key, bytes })
      entry = { key, size: bytes.byteLength, persisted: Date.now(), seg: loc.seg, off: loc.off }
    } catch (err) {
      throw isSwarmpackError(err) ? err : ioError(`cannot store block ${cid.toString()}`, err)
    }
    this.#index.set(key, entry)
    this.#addLive(key, entry)
    this.#bytes += bytes.byteLength
    this.#stuck?.candidates.add(key)
    // a dag-cbor block that a pin reaches: what it links to is pinned too
    this.#writes++
    if (this.#pinned?.has(key) === true && cid.code === DAG_CBOR_CODEC) {
      await this.#expand(this.#pinned, [cid])
    }
    this.#emit('block:added', { cid, size: bytes.byteLength })
  }

  /**
   * One batch of the group commit: the records are appended to the segment log, then their index
   * entries are queued in one event turn (lmdb commits them in one transaction) while the segment's
   * data sync runs; the next batch may be written meanwhile. The batch's puts resolve once both
   * syncs are done (durable) or the commit is (not durable). A power loss between the two can
   * leave entries whose records never reached the disk: past the durable end, checked on open.
   */
  async #writeBatch (records: RecordIn[]): Promise<BatchWrite<Location>> {
    const { locs, synced } = await this.#log.append(records)
    const indexed = this.#commitEntries(records.map((r, i) => ({ key: r.key, size: r.bytes.byteLength, ...locs[i] })))
    return { results: locs, committed: Promise.all([synced, indexed]).then(() => {}) }
  }

  /**
   * Writes index entries and the segments' durable ends reached since the last commit (one
   * transaction: queued in one turn) and waits for their commit (and sync).
   */
  async #commitEntries (entries: Array<{ key: string, size: number, seg: number, off: number, used?: number }>): Promise<void> {
    const now = Date.now()
    const puts: Array<Promise<unknown>> = entries.map(e => {
      const value: IndexValue = [e.size, e.used ?? now, e.seg, e.off]
      return this.#db.index.put(dbKeyOf(e.key), value)
    })
    puts.push(...queueDurableEnds(this.#db, this.#log.takeDurableEnds()))
    try {
      await Promise.all(puts)
      if (this.#fsync) await this.#db.env.flushed
    } catch (err) {
      throw ioError(`cannot commit ${entries.length} blocks to the index of ${this.dir}`, err)
    }
  }

  async * putMany (source: Iterable<InputPair> | AsyncIterable<InputPair>, options: AbortOptions = {}): AsyncGenerator<CID> {
    for await (const { cid, bytes } of source) {
      yield await this.put(cid, bytes, options)
    }
  }

  /** Removes a block. Absent blocks are fine; a block a pin reaches raises ERR_BLOCK_PINNED. */
  async delete (cid: CID, options: AbortOptions = {}): Promise<void> {
    this.#assertOpen()
    throwIfAborted(options.signal)
    const key = this.#keyOf(cid)
    if (cid.multihash.code === IDENTITY_CODE) return
    if ((await this.#pinnedSet()).has(key)) {
      throw new SwarmpackError(StoreErrorCode.BLOCK_PINNED, `block ${cid.toString()} is pinned`, { details: { cid: cid.toString() } })
    }
    await this.#remove(key)
  }

  async * deleteMany (source: Iterable<CID> | AsyncIterable<CID>, options: AbortOptions = {}): AsyncGenerator<CID> {
    for await (const cid of source) {
      await this.delete(cid, options)
      yield cid
    }
  }

  /**
   * Removes a block and its index entry (one transaction) and updates accounting at once, before
   * the commit: callers removing many blocks start them all and await them together, so they
   * share commits. Resolves to the block's size, or undefined if it wasn't there.
   */
  async #remove (key: string): Promise<number | undefined> {
    const entry = this.#index.get(key)
    if (entry === undefined) return undefined
    this.#forget(key, entry)
    if (this.#maintenance !== undefined) await this.#maintenance
    // compaction may have moved the record meanwhile: `entry` is the object it updated
    if (await this.#dropRecord(key, entry)) await this.#retireIfEmpty(entry.seg)
    return entry.size
  }

  /** Takes a (forgotten) block's record out of the live count and its entry out of the index; true when its segment has no live record left. */
  async #dropRecord (key: string, entry: Entry): Promise<boolean> {
    const emptied = this.#dropLive(key, entry)
    try {
      await this.#db.index.remove(dbKeyOf(key))
    } catch (err) {
      throw ioError(`cannot remove block ${key}`, err)
    }
    return emptied
  }

  /**
   * Deletes a segment no live record is left in, at once: the space of removed blocks goes back
   * to the file system without compaction when whole segments empty (the active one only while
   * no batch is being written to it).
   */
  async #retireIfEmpty (seg: number): Promise<void> {
    if (this.#live.has(seg) || this.#maintenance !== undefined) return
    if (seg === this.#log.active && this.#commit.busy) return
    await this.#log.retire(seg).catch((err: unknown) => { log.error('cannot delete an emptied segment: %e', err) })
  }

  #forget (key: string, entry: Entry): void {
    this.#index.delete(key)
    this.#bytes -= entry.size
    this.#emit('block:removed', { cid: CID.parse(key), size: entry.size })
  }

  async #removeCorrupt (key: string): Promise<void> {
    log.error('removing corrupt block %s', key)
    await this.#remove(key)
  }

  // ---------------------------------------------------------------- pins

  /**
   * Pins `root` under `name` (replacing what the name pinned before). Everything the root reaches
   * is kept by eviction and gc, including blocks that arrive later: pin a root before fetching its
   * DAG and the partial download is protected too.
   */
  async pin (name: string, root: CID): Promise<void> {
    this.#assertOpen()
    checkPinName(name)
    if (CID.asCID(root) === null) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'pin root must be a CID')
    const previous = this.#pins.get(name)
    this.#pins.set(name, root)
    await this.#savePins()
    if (previous !== undefined && !previous.equals(root)) {
      this.#pinned = undefined // something may have become unpinned
      this.#stuck = undefined
    } else if (this.#pinned !== undefined) {
      await this.#walkPinned(this.#pinned, [root])
    }
  }

  /** Removes a named pin; ERR_PIN_NOT_FOUND if there is none. The blocks stay until gc or eviction. */
  async unpin (name: string): Promise<void> {
    this.#assertOpen()
    checkPinName(name)
    if (!this.#pins.has(name)) throw new SwarmpackError(StoreErrorCode.PIN_NOT_FOUND, `no pin named ${JSON.stringify(name)}`, { details: { name } })
    this.#pins.delete(name)
    await this.#savePins()
    this.#pinned = undefined
    this.#stuck = undefined
  }

  pins (): Array<{ name: string, root: CID }> {
    return [...this.#pins].map(([name, root]) => ({ name, root }))
  }

  /** Whether a pin reaches `cid` (the block need not be present). */
  async isPinned (cid: CID): Promise<boolean> {
    this.#assertOpen()
    const key = this.#keyOf(cid)
    return (await this.#pinnedSet()).has(key)
  }

  /** CIDs reachable from pins that the store lacks: what a resolver still has to fetch. */
  async missingPinned (): Promise<CID[]> {
    this.#assertOpen()
    const out: CID[] = []
    for (const [key, codec] of await this.#pinnedSet()) {
      if (!this.#index.has(key)) out.push(CID.createV1(codec, CID.parse(key).multihash))
    }
    return out
  }

  async #savePins (): Promise<void> {
    // serialise writers; each writes the then-current map, so the last write wins with the latest state
    const next = this.#pinsWrite.then(async () => { await savePins(this.dir, this.#pins, this.#fsync) })
    this.#pinsWrite = next.catch(() => {})
    await next
  }

  async #pinnedSet (): Promise<PinnedSet> {
    if (this.#pinned !== undefined) return this.#pinned
    if (this.#pinnedComputing !== undefined) return await this.#pinnedComputing
    const computing = (async () => {
      // a block written during the walk may have been missed by it: walk again until quiet
      for (let round = 0; ; round++) {
        const writes = this.#writes
        const set: PinnedSet = new Map()
        await this.#walkPinned(set, [...this.#pins.values()])
        if (writes === this.#writes || round >= 4) return set
      }
    })()
    this.#pinnedComputing = computing
    try {
      const set = await computing
      // a pin change during the walk invalidated it again; the next caller recomputes
      if (this.#pinnedComputing === computing) this.#pinned = set
      return set
    } finally {
      if (this.#pinnedComputing === computing) this.#pinnedComputing = undefined
    }
  }

  /** Adds `roots` and what they reach (through blocks present in the store) to `set`. */
  async #walkPinned (set: PinnedSet, roots: CID[]): Promise<void> {
    const queue: CID[] = []
    for (const root of roots) {
      const key = blockKey(root)
      if (set.has(key)) continue
      set.set(key, root.code)
      queue.push(root)
    }
    await this.#expand(set, queue)
  }

  /** Adds what the (already counted) CIDs in `queue` link to, transitively, to `set`. */
  async #expand (set: PinnedSet, queue: CID[]): Promise<void> {
    while (queue.length > 0) {
      const cid = queue.pop() as CID
      if (cid.code !== DAG_CBOR_CODEC) continue
      const key = blockKey(cid)
      if (this.#maintenance !== undefined) await this.#maintenance
      const entry = this.#index.get(key)
      if (entry === undefined) continue // absent or removed meanwhile: its children get added if it comes back (see #write)
      const bytes = this.#read(key, entry)
      if (typeof bytes === 'string') continue // damaged: getBytes and verify remove it
      for (const child of this.#links(cid, bytes)) {
        const childKey = blockKey(child)
        if (set.has(childKey)) continue
        set.set(childKey, child.code)
        if (child.code === DAG_CBOR_CODEC) queue.push(child)
      }
    }
  }

  #links (cid: CID, bytes: Uint8Array): CID[] {
    try {
      return blockLinks(cid, bytes)
    } catch (err) {
      log.error('cannot decode links of %s: %e', cid, err)
      return []
    }
  }

  // ---------------------------------------------------------------- eviction, gc, verify, compaction

  /** Evicts unpinned blocks, least recently used first, until the store fits in maxSize. */
  async #evict (protect?: string): Promise<void> {
    // one pass at a time; a put that waited re-checks, since the pass may have ended before its block
    while (this.#evicting !== undefined) await this.#evicting
    if (this.#bytes <= this.maxSize) return
    this.#evicting = this.#evictPass(protect)
    try {
      await this.#evicting
    } finally {
      this.#evicting = undefined
    }
  }

  async #evictPass (protect?: string): Promise<void> {
    const pinned = await this.#pinnedSet()
    const stuck = this.#stuck
    const removals: Array<Promise<number | undefined>> = []
    // Live iteration, oldest first (no O(n) copy per put); entries touched meanwhile move to the end
    // and may be visited again, which is harmless. When an earlier pass found nothing but pinned
    // blocks, only blocks written since can be evicted, so only those are visited (in write order).
    for (const key of stuck?.candidates ?? this.#index.keys()) {
      if (this.#bytes <= this.maxSize) break
      if (key === protect || this.#writing.has(key)) continue
      if (pinned.has(key) || !this.#index.has(key)) { stuck?.candidates.delete(key); continue }
      removals.push(this.#remove(key)) // accounting drops at once; the commits are shared
      stuck?.candidates.delete(key)
    }
    const removed = (await Promise.all(removals)).filter(size => size !== undefined).length
    if (removed > 0) log('evicted %d blocks, now %d bytes', removed, this.#bytes)
    if (this.#bytes > this.maxSize) {
      if (this.#stuck === undefined) {
        log('store %s is over its limit with only pinned blocks left (%d > %d)', this.dir, this.#bytes, this.maxSize)
        const candidates = new Set(this.#writing.keys())
        if (protect !== undefined) candidates.add(protect)
        this.#stuck = { candidates }
      }
    }
  }

  /**
   * Removes unpinned blocks, least recently used first: all of them, or until `targetSize` is
   * reached. Then compacts when `compact` says so (see GcOptions).
   */
  async gc (options: GcOptions = {}): Promise<GcReport> {
    this.#assertOpen()
    const target = options.targetSize ?? -1
    const pinned = await this.#pinnedSet()
    let removedBlocks = 0
    let removedBytes = 0
    const removals: Array<Promise<unknown>> = []
    for (const key of [...this.#index.keys()]) {
      throwIfAborted(options.signal)
      if (this.#bytes <= target) break
      if (pinned.has(key) || this.#writing.has(key) || !this.#index.has(key)) continue
      removals.push(this.#remove(key).then(size => {
        if (size === undefined) return
        removedBlocks++
        removedBytes += size
        options.onProgress?.(new CustomProgressEvent('swarmpack:store:remove', { cid: CID.parse(key), size, reason: 'gc' as const }))
      }))
    }
    await Promise.all(removals)
    log('gc removed %d blocks (%d bytes)', removedBlocks, removedBytes)
    let usage = await this.#usage()
    const mode = options.compact ?? 'auto'
    const worth = usage.reusableBytes >= AUTO_COMPACT_MIN && usage.reusableBytes >= usage.fileBytes * AUTO_COMPACT_SHARE
    const compacted = mode === true || (mode === 'auto' && worth)
    if (compacted) {
      usage = await this.compact(options)
    }
    return { removedBlocks, removedBytes, bytes: this.#bytes, blocks: this.#index.size, compacted, fileBytes: usage.fileBytes }
  }

  /**
   * Gives the space of removed blocks back to the file system: the live records of every segment
   * holding dead bytes are copied to a new segment (synced, then their index entries moved in one
   * commit per batch), and the old segment file is deleted; the index file is rewritten without its
   * free pages. A crash at any point leaves every index entry pointing at a whole record, in the old
   * segment or the new one. Reads and writes wait while it runs. Returns the disk usage afterwards.
   */
  async compact (options: AbortOptions = {}): Promise<DiskUsage> {
    this.#assertOpen()
    while (this.#maintenance !== undefined) await this.#maintenance
    let done!: () => void
    this.#maintenance = new Promise(resolve => { done = resolve })
    try {
      await Promise.allSettled(this.#writing.values())
      await this.#commit.idle()
      // the copies go to a fresh segment, so every old one can be emptied
      await this.#log.roll()
      const sizes = new Map(this.#log.sizes())
      const dirty = new Set([...sizes].filter(([seg, size]) => size > (this.#live.get(seg)?.bytes ?? 0)).map(([seg]) => seg))
      const moving = new Map<number, string[]>()
      for (const [key, entry] of this.#index) {
        if (dirty.has(entry.seg)) moving.set(entry.seg, [...(moving.get(entry.seg) ?? []), key])
      }
      for (const seg of dirty) {
        throwIfAborted(options.signal)
        await this.#moveRecords(moving.get(seg) ?? [])
        // a record that could not be read was dropped from the index: nothing points here now
        if (!this.#live.has(seg)) await this.#log.retire(seg)
      }
      try {
        this.#db = await compactInto(this.#db, this.dir)
      } catch (err) {
        // the swap failed after the old index was closed: carry on with it, reopened
        const reopened = (err as { reopened?: StoreDb }).reopened
        if (reopened !== undefined) this.#db = reopened
        throw err
      }
      const usage = await this.#usage()
      log('compacted %s to %d bytes', this.dir, usage.fileBytes)
      return usage
    } finally {
      this.#maintenance = undefined
      done()
    }
  }

  /** Copies records to the active segment in batches of about 8 MiB and points their entries there. */
  async #moveRecords (keys: string[]): Promise<void> {
    let batch: Array<{ key: string, entry: Entry, bytes: Uint8Array }> = []
    let bytes = 0
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      const { locs, synced } = await this.#log.append(batch.map(b => ({ key: b.key, bytes: b.bytes })))
      await synced
      await this.#commitEntries(batch.map((b, i) => ({ key: b.key, size: b.entry.size, used: b.entry.persisted, ...locs[i] })))
      batch.forEach((b, i) => {
        this.#dropLive(b.key, b.entry)
        b.entry.seg = locs[i].seg
        b.entry.off = locs[i].off
        this.#addLive(b.key, b.entry)
      })
      batch = []
      bytes = 0
    }
    for (const key of keys) {
      const entry = this.#index.get(key)
      if (entry === undefined) continue
      const read = this.#read(key, entry)
      if (typeof read === 'string') {
        log.error('compaction: dropping unreadable block %s (%s)', key, read)
        this.#forget(key, entry)
        await this.#dropRecord(key, entry)
        continue
      }
      batch.push({ key, entry, bytes: read })
      bytes += read.byteLength
      if (bytes >= COMPACT_BATCH_BYTES) await flush()
    }
    await flush()
  }

  /** Re-hashes every stored block; corrupt or unreadable ones are removed and reported. */
  async verify (options: VerifyOptions = {}): Promise<VerifyReport> {
    this.#assertOpen()
    await this.#maintenance
    const keys = [...this.#index.keys()]
    const corrupt: CorruptBlock[] = []
    let checked = 0
    for (const key of keys) {
      throwIfAborted(options.signal)
      const entry = this.#index.get(key)
      if (entry === undefined) continue
      const cid = CID.parse(key)
      let reason: string | undefined
      try {
        const bytes = this.#read(key, entry)
        reason = typeof bytes === 'string' ? bytes : this.#check(key, bytes)
      } catch (err) {
        reason = `unreadable: ${String(err)}`
      }
      checked++
      if (reason !== undefined) {
        corrupt.push({ cid, reason })
        await this.#removeCorrupt(key)
        options.onProgress?.(new CustomProgressEvent('swarmpack:store:remove', { cid, size: entry.size, reason: 'corrupt' as const }))
      }
      options.onProgress?.(new CustomProgressEvent('swarmpack:store:verify', { cid, checked, total: keys.length, ok: reason === undefined }))
      // reads are synchronous: let other work run now and then on a large store
      if (checked % 256 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    if (corrupt.length > 0) log.error('verify: %d of %d blocks corrupt and removed', corrupt.length, checked)
    return { checked, corrupt, missingPinned: await this.missingPinned() }
  }

  /** Waits for running writes, syncs, closes the files and releases the lock. Later calls raise ERR_STORE_CLOSED. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.allSettled([...this.#writing.values(), this.#pinsWrite, this.#evicting, this.#maintenance, this.#commit.idle()])
    try {
      await this.#log.close()
      // the last syncs' durable ends: a store closed cleanly has nothing to check on open
      await Promise.all(queueDurableEnds(this.#db, this.#log.takeDurableEnds()))
      await this.#db.env.flushed
      await this.#db.env.close()
    } catch (err) {
      log.error('closing the store files of %s failed: %e', this.dir, err)
    }
    await this.#releaseLock?.()
  }
}

/** A block's bytes as the one-chunk async generator interface-blockstore pairs carry. */
async function * single (bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

/** Joins a put value into one buffer, refusing more than MAX_BLOCK_SIZE bytes. */
async function collect (val: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<Uint8Array> {
  if (val instanceof Uint8Array) return val
  if (val === null || typeof val !== 'object' || !(Symbol.iterator in val || Symbol.asyncIterator in val)) {
    throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'block bytes must be a Uint8Array or an iterable of them')
  }
  const chunks: Uint8Array[] = []
  let length = 0
  for await (const chunk of val) {
    throwIfAborted(signal)
    if (!(chunk instanceof Uint8Array)) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'block chunks must be Uint8Arrays')
    length += chunk.byteLength
    if (length > MAX_BLOCK_SIZE) {
      throw new SwarmpackError(CoreErrorCode.BLOCK_TOO_LARGE, `block exceeds ${MAX_BLOCK_SIZE} bytes`, { details: { max: MAX_BLOCK_SIZE } })
    }
    chunks.push(chunk)
  }
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(length)
  let off = 0
  for (const c of chunks) { out.set(c, off); off += c.byteLength }
  return out
}

/** verifyBlock for any codec: the hash (sha2-256, or identity) and the size cap are what count. */
function checkHash (cid: CID, bytes: Uint8Array): void {
  if (CID.asCID(cid) === null) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'not a CID')
  const mh = cid.multihash.code
  if (mh !== SHA2_256_CODE && mh !== IDENTITY_CODE) {
    throw new SwarmpackError(CoreErrorCode.UNSUPPORTED_CID, `unsupported hash in ${cid.toString()}`, { details: { cid: cid.toString() } })
  }
  try {
    // a CID core supports as it is (no new CID per put on the hot paths); any other codec as raw
    const supported = cid.version === 1 && (cid.code === RAW_CODEC || cid.code === DAG_CBOR_CODEC)
    verifyBlock(supported ? cid : CID.createV1(RAW_CODEC, cid.multihash), bytes)
  } catch (err) {
    if (isSwarmpackError(err, CoreErrorCode.BLOCK_MISMATCH)) {
      throw new SwarmpackError(CoreErrorCode.BLOCK_MISMATCH, `block does not match ${cid.toString()}`, { details: { cid: cid.toString() } })
    }
    throw err
  }
}
