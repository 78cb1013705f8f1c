/**
 * The block store's segment log: block bytes appended to a few large files
 * (`<dir>/segments/00000001.seg`, ...), each record a small header and the block:
 *
 *   magic u32 'SPB1' | size u32 | key length u16 | key (the store key, ASCII) | block bytes
 *
 * Appends go to one active segment at a time, a batch per `writev` (group commit); a full segment
 * is closed and the next one started. An append resolves once its bytes are written and hands back
 * a promise of their data sync, so the caller can commit the index entries of a batch while its
 * sync runs (and write the next batch meanwhile); syncs of one file are coalesced, one at a time.
 * The log tracks each segment's durable end (synced bytes; written bytes when not durable): the
 * store persists it with its index so that, after a crash, only records past it need checking.
 * Records are never rewritten: a removed block leaves dead bytes that compaction (the store's
 * `compact`) reclaims by copying the live records of a segment to the active one and deleting the
 * old file.
 *
 * Reads are synchronous `pread`s into a fresh buffer (or the caller's, `readInto`), header included: the header must name the
 * key and size the index expects, so a misplaced, torn or overwritten record is caught on every
 * read without hashing. Nothing is memory-mapped, so reading a large store does not grow the
 * process's resident memory (the bytes stay in the kernel's page cache).
 */
import { closeSync, openSync, readSync, readvSync } from 'node:fs'
import { mkdir, open, readdir, rm, stat, truncate, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { ioError } from './errors.js'

export const SEGMENTS_DIR = 'segments'
const MAGIC = 0x31425053 // 'SPB1' little endian
const FIXED_HEADER = 10
/** iovecs per writev call (Linux allows 1024). */
const IOV_PER_WRITE = 512

export interface Location {
  seg: number
  /** Offset of the record (its header) in the segment file. */
  off: number
}

export interface RecordIn {
  key: string
  bytes: Uint8Array
}

export interface Appended {
  /** Where each record went, in order. */
  locs: Location[]
  /** Resolves once the records are synced (at once when not durable); ERR_STORE_IO if a sync failed. */
  synced: Promise<void>
}

export interface SegmentLogInit {
  /** datasync every appended batch (the `synced` promise of its append). */
  durable: boolean
  /** A segment is closed once it holds this many bytes. Default 64 MiB. */
  maxSegmentBytes?: number
  /** Read file descriptors kept open at most (least recently used closed first). Default 64. */
  maxOpenFiles?: number
}

/** Bytes a record of `size` bytes under `key` takes in its segment. */
export function recordLength (key: string, size: number): number {
  return FIXED_HEADER + key.length + size
}

export function segmentName (seg: number): string {
  return `${String(seg).padStart(8, '0')}.seg`
}

const SEGMENT_NAME = /^(\d{8})\.seg$/

/**
 * The data syncs of one segment file, coalesced: one runs at a time, and every request made while
 * it runs is served by the single next one (which starts after the bytes of those requests were
 * written). A failed sync fails every later request too: after a failed fsync the kernel may have
 * dropped dirty pages and a later sync can report success for them.
 */
class Syncer {
  readonly #fh: FileHandle
  readonly #path: string
  readonly #onSynced: (end: number) => void
  #running: Promise<void> | undefined
  #next: Promise<void> | undefined
  /** Highest end asked for by requests the next sync serves. */
  #wanted = 0
  failed: Error | undefined

  constructor (fh: FileHandle, path: string, onSynced: (end: number) => void) {
    this.#fh = fh
    this.#path = path
    this.#onSynced = onSynced
  }

  /** Resolves once the file's bytes up to `end` (written before this call) are synced. */
  async request (end: number): Promise<void> {
    if (this.#next !== undefined) {
      this.#wanted = Math.max(this.#wanted, end)
      return await this.#next
    }
    if (this.#running === undefined) return await this.#start(end)
    // the running sync may have started before these bytes were written: the next one covers them
    this.#wanted = end
    const next = this.#running.then(noop, noop).then(async () => {
      this.#next = undefined
      return await this.#start(this.#wanted)
    })
    this.#next = next
    return await next
  }

  async #start (end: number): Promise<void> {
    if (this.failed !== undefined) throw this.failed
    const run = this.#fh.datasync().then(() => { this.#onSynced(end) }, (err: unknown) => {
      this.failed ??= ioError(`cannot sync ${this.#path}`, err)
      throw this.failed
    })
    this.#running = run
    const clear = (): void => { if (this.#running === run) this.#running = undefined }
    run.then(clear, clear)
    return await run
  }

  /** Resolves once no sync is running or waiting. */
  async idle (): Promise<void> {
    while (this.#running !== undefined || this.#next !== undefined) {
      await Promise.allSettled([this.#running, this.#next])
    }
  }
}

function noop (): void {}

export class SegmentLog {
  readonly dir: string
  readonly #durable: boolean
  readonly #maxSegmentBytes: number
  readonly #maxOpen: number
  /** seg -> its size on disk (what appends have written). */
  readonly #sizes = new Map<number, number>()
  /** seg -> read fd, in use order (first = least recently used). */
  readonly #readFds = new Map<number, number>()
  #active: { seg: number, fh: FileHandle, sync: Syncer | undefined } | undefined
  /** seg -> durable end: the bytes known synced (written, when not durable). */
  readonly #durableEnds = new Map<number, number>()
  /** Segments whose durable end changed (or that were deleted) since `takeDurableEnds`. */
  readonly #changedEnds = new Set<number>()
  #next = 1
  /** Until the first append or roll: whether appends may continue the newest segment found on open. */
  #resume = true
  /** The header buffer `readInto` reuses. */
  #head = Buffer.allocUnsafe(FIXED_HEADER + 64)

  private constructor (dir: string, init: SegmentLogInit) {
    this.dir = dir
    this.#durable = init.durable
    this.#maxSegmentBytes = init.maxSegmentBytes ?? 64 * 1024 * 1024
    this.#maxOpen = init.maxOpenFiles ?? 64
  }

  /** Opens the segment directory of a store (created if missing) and lists its segments. */
  static async open (storeDir: string, init: SegmentLogInit): Promise<SegmentLog> {
    const log = new SegmentLog(join(storeDir, SEGMENTS_DIR), init)
    try {
      await mkdir(log.dir, { recursive: true })
      for (const name of await readdir(log.dir)) {
        const m = SEGMENT_NAME.exec(name)
        if (m === null) continue
        const seg = Number(m[1])
        log.#sizes.set(seg, (await stat(join(log.dir, name))).size)
        log.#next = Math.max(log.#next, seg + 1)
      }
    } catch (err) {
      throw ioError(`cannot open the block segments in ${log.dir}`, err)
    }
    return log
  }

  #path (seg: number): string {
    return join(this.dir, segmentName(seg))
  }

  /** seg -> size on disk, of every segment. */
  sizes (): ReadonlyMap<number, number> {
    return this.#sizes
  }

  /** The segment appends go to now (undefined until the next append starts one). */
  get active (): number | undefined {
    return this.#active?.seg
  }

  /**
   * Makes the segments agree with the index after a restart: a segment no index entry points into
   * is deleted (its records were never acknowledged, or all removed), and the newest segment is cut
   * back to the end of its last indexed record, dropping a batch a crash interrupted, so appends
   * continue after whole records only. `liveEnds`: seg -> end of its last indexed record.
   */
  async recover (liveEnds: ReadonlyMap<number, number>): Promise<{ deleted: number, truncatedBytes: number }> {
    let deleted = 0
    let truncatedBytes = 0
    const newest = Math.max(0, ...this.#sizes.keys())
    for (const [seg, size] of [...this.#sizes]) {
      const end = liveEnds.get(seg)
      if (end === undefined) {
        await this.retire(seg)
        deleted++
      } else if (seg === newest && size > end) {
        await truncate(this.#path(seg), end).catch((err: unknown) => { throw ioError(`cannot truncate ${this.#path(seg)}`, err) })
        this.#sizes.set(seg, end)
        truncatedBytes += size - end
      }
    }
    return { deleted, truncatedBytes }
  }

  /**
   * Sets the durable ends found in the index on open (after `recover`), each cut to its segment's
   * size: appends after a truncation must not count as synced. Every segment is marked changed.
   */
  setDurableEnds (ends: ReadonlyMap<number, number>): void {
    this.#durableEnds.clear()
    for (const [seg, size] of this.#sizes) {
      this.#durableEnds.set(seg, Math.min(size, ends.get(seg) ?? 0))
      this.#changedEnds.add(seg)
    }
    for (const seg of ends.keys()) if (!this.#sizes.has(seg)) this.#changedEnds.add(seg)
  }

  /**
   * Syncs every segment with bytes past its durable end (after a crash: records the store has just
   * checked, which may be in the page cache only), so they count as durable from now on.
   */
  async syncPastDurableEnds (): Promise<void> {
    for (const [seg, size] of this.#sizes) {
      if ((this.#durableEnds.get(seg) ?? 0) >= size) continue
      if (this.#durable) {
        try {
          const fh = await open(this.#path(seg), 'r')
          try { await fh.datasync() } finally { await fh.close() }
        } catch (err) {
          throw ioError(`cannot sync ${this.#path(seg)}`, err)
        }
      }
      this.#advanceDurable(seg, size)
    }
  }

  /** The durable ends that changed since the last call: seg -> end, or undefined for a deleted segment. */
  takeDurableEnds (): Array<[number, number | undefined]> {
    const out: Array<[number, number | undefined]> = []
    for (const seg of this.#changedEnds) out.push([seg, this.#durableEnds.get(seg)])
    this.#changedEnds.clear()
    return out
  }

  #advanceDurable (seg: number, end: number): void {
    if (!this.#sizes.has(seg) || end <= (this.#durableEnds.get(seg) ?? 0)) return
    this.#durableEnds.set(seg, end)
    this.#changedEnds.add(seg)
  }

  /**
   * Appends records in order and returns where each one went once they are written, with the
   * promise of their sync (every segment written, when durable; a new segment's directory entry is
   * synced before its first append resolves). Callers serialise appends (the store's group commit
   * does); the syncs of one append may still run while the next one writes.
   */
  async append (records: RecordIn[]): Promise<Appended> {
    const out: Location[] = []
    const syncs: Array<Promise<void>> = []
    let i = 0
    while (i < records.length) {
      const active = await this.#writable()
      let size = this.#sizes.get(active.seg) ?? 0
      const iov: Uint8Array[] = []
      let full = false
      // fill this segment; a segment holds at least one record, however large
      while (i < records.length) {
        const r = records[i]
        const len = recordLength(r.key, r.bytes.byteLength)
        if (size > 0 && size + len > this.#maxSegmentBytes) { full = true; break }
        iov.push(recordHeader(r.key, r.bytes.byteLength), r.bytes)
        out.push({ seg: active.seg, off: size })
        size += len
        i++
      }
      try {
        for (let j = 0; j < iov.length; j += IOV_PER_WRITE) {
          await writeAll(active.fh, iov.slice(j, j + IOV_PER_WRITE))
        }
      } catch (err) {
        // part of the batch may be in the file: start the next append in a new segment, so no
        // later record is placed after bytes the size count does not know of
        await this.roll()
        throw ioError(`cannot append to ${this.#path(active.seg)}`, err)
      }
      this.#sizes.set(active.seg, size)
      if (active.sync === undefined) this.#advanceDurable(active.seg, size)
      else syncs.push(active.sync.request(size))
      if (full || size >= this.#maxSegmentBytes) await this.roll()
    }
    const synced = syncs.length === 0 ? Promise.resolve() : Promise.all(syncs).then(noop)
    synced.catch(noop) // the caller awaits it; never an unhandled rejection meanwhile
    return { locs: out, synced }
  }

  async #writable (): Promise<{ seg: number, fh: FileHandle, sync: Syncer | undefined }> {
    // after a failed sync of the active segment, go on in a new one (see Syncer)
    if (this.#active?.sync?.failed !== undefined) await this.roll()
    if (this.#active !== undefined) return this.#active
    // after opening, continue the newest segment if it has room; after a roll, start a new one
    const newest = Math.max(0, ...this.#sizes.keys())
    const resume = this.#resume && newest > 0 && (this.#sizes.get(newest) ?? 0) < this.#maxSegmentBytes
    this.#resume = false
    const seg = resume ? newest : this.#next++
    try {
      const fh = await open(this.#path(seg), 'a')
      if (!this.#sizes.has(seg)) {
        this.#sizes.set(seg, 0)
        this.#durableEnds.set(seg, 0)
        this.#changedEnds.add(seg)
        if (this.#durable) await syncDir(this.dir)
      }
      const sync = this.#durable ? new Syncer(fh, this.#path(seg), end => { this.#advanceDurable(seg, end) }) : undefined
      this.#active = { seg, fh, sync }
      return this.#active
    } catch (err) {
      throw ioError(`cannot open ${this.#path(seg)} for appending`, err)
    }
  }

  /** Closes the active segment (once its syncs are done): the next append starts a new one (compaction empties the old ones). */
  async roll (): Promise<void> {
    this.#resume = false
    const active = this.#active
    if (active === undefined) return
    this.#active = undefined
    await active.sync?.idle()
    await active.fh.close().catch(() => {})
  }

  /**
   * Reads the record at `loc` and returns its block, or a reason when the record is not the one
   * the index describes (wrong key or size, short file, bad magic). Throws ERR_STORE_IO for a
   * failed read (a missing segment file is reported as a reason, not thrown).
   */
  read (loc: Location, key: string, size: number): Uint8Array | string {
    const hlen = FIXED_HEADER + key.length
    const buf = Buffer.allocUnsafe(hlen + size)
    const reason = this.#readRecord(loc, key, size, buf, undefined)
    return reason ?? new Uint8Array(buf.buffer, buf.byteOffset + hlen, size)
  }

  /**
   * `read` into the caller's `target` (exactly the block's size) instead of a fresh buffer: one
   * `preadv`, the header into a buffer reused for every read. undefined when it worked, else why not.
   */
  readInto (loc: Location, key: string, target: Uint8Array): string | undefined {
    const hlen = FIXED_HEADER + key.length
    if (this.#head.length < hlen) this.#head = Buffer.allocUnsafe(hlen)
    return this.#readRecord(loc, key, target.length, this.#head.subarray(0, hlen), target)
  }

  /** Reads a record's header into `head` (and its block into `body`, or into the rest of `head`) and checks it. */
  #readRecord (loc: Location, key: string, size: number, head: Buffer, body: Uint8Array | undefined): string | undefined {
    const fd = this.#readFd(loc.seg)
    if (fd === undefined) return `segment ${segmentName(loc.seg)} is missing`
    const hlen = FIXED_HEADER + key.length
    let got: number
    try {
      got = body === undefined ? readSync(fd, head, 0, head.length, loc.off) : readvSync(fd, [head, body], loc.off)
    } catch (err) {
      throw ioError(`cannot read ${this.#path(loc.seg)} at ${loc.off}`, err)
    }
    if (got < hlen + size) return `record cut short (${Math.max(0, got - hlen)} of ${size} bytes)`
    if (head.readUInt32LE(0) !== MAGIC) return 'record header damaged'
    const stored = head.readUInt32LE(4)
    if (stored !== size) return `record holds ${stored} bytes, the index says ${size}`
    if (head.readUInt16LE(8) !== key.length || head.toString('latin1', FIXED_HEADER, hlen) !== key) return 'record belongs to another block'
    return undefined
  }

  #readFd (seg: number): number | undefined {
    let fd = this.#readFds.get(seg)
    if (fd !== undefined) {
      this.#readFds.delete(seg)
      this.#readFds.set(seg, fd)
      return fd
    }
    try {
      fd = openSync(this.#path(seg), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw ioError(`cannot open ${this.#path(seg)}`, err)
    }
    this.#readFds.set(seg, fd)
    if (this.#readFds.size > this.#maxOpen) {
      const [oldest, ofd] = this.#readFds.entries().next().value as [number, number]
      this.#readFds.delete(oldest)
      closeSync(ofd)
    }
    return fd
  }

  /** Deletes a segment file (after its live records moved, or when none are left). */
  async retire (seg: number): Promise<void> {
    if (this.#active?.seg === seg) await this.roll()
    const fd = this.#readFds.get(seg)
    if (fd !== undefined) {
      this.#readFds.delete(seg)
      closeSync(fd)
    }
    try {
      await rm(this.#path(seg), { force: true })
    } catch (err) {
      throw ioError(`cannot delete ${this.#path(seg)}`, err)
    }
    this.#sizes.delete(seg)
    this.#durableEnds.delete(seg)
    this.#changedEnds.add(seg)
  }

  async close (): Promise<void> {
    const active = this.#active
    this.#active = undefined
    if (active !== undefined) {
      await active.sync?.idle()
      if (active.sync !== undefined && active.sync.failed === undefined) {
        await active.sync.request(this.#sizes.get(active.seg) ?? 0).catch(noop)
      }
      await active.fh.close().catch(() => {})
    }
    for (const fd of this.#readFds.values()) closeSync(fd)
    this.#readFds.clear()
  }
}

/** The header of a record (exported for the test helpers that damage records). */
export function recordHeader (key: string, size: number): Buffer {
  const h = Buffer.allocUnsafe(FIXED_HEADER + key.length)
  h.writeUInt32LE(MAGIC, 0)
  h.writeUInt32LE(size, 4)
  h.writeUInt16LE(key.length, 8)
  h.write(key, FIXED_HEADER, 'latin1')
  return h
}

/** writev until every byte is written (a short write continues where it stopped). */
async function writeAll (fh: FileHandle, iov: Uint8Array[]): Promise<void> {
  let bufs = iov
  while (bufs.length > 0) {
    const total = bufs.reduce((n, b) => n + b.byteLength, 0)
    const { bytesWritten } = await fh.writev(bufs)
    if (bytesWritten >= total) return
    let skip = bytesWritten
    const rest: Uint8Array[] = []
    for (const b of bufs) {
      if (skip >= b.byteLength) { skip -= b.byteLength; continue }
      rest.push(skip > 0 ? b.subarray(skip) : b)
      skip = 0
    }
    bufs = rest
  }
}

async function syncDir (dir: string): Promise<void> {
  const dh = await open(dir, 'r')
  try { await dh.sync() } finally { await dh.close() }
}
