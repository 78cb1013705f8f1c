/**
 * The block store's segment log: block bytes appended to a few large files
 * (`<dir>/segments/00000001.seg`, ...), each record a small header and the block:
 *
 *   magic u32 'SPB1' | size u32 | key length u16 | key (the store key, ASCII) | block bytes
 *
 * Appends go to one active segment at a time, a batch per `writev` and one `datasync` per batch
 * (group commit); a full segment is closed and the next one started. Records are never rewritten:
 * a removed block leaves dead bytes that compaction (the store's `compact`) reclaims by copying the
 * live records of a segment to the active one and deleting the old file.
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

export interface SegmentLogInit {
  /** datasync every appended batch before it resolves. */
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

export class SegmentLog {
  readonly dir: string
  readonly #durable: boolean
  readonly #maxSegmentBytes: number
  readonly #maxOpen: number
  /** seg -> its size on disk (what appends have written). */
  readonly #sizes = new Map<number, number>()
  /** seg -> read fd, in use order (first = least recently used). */
  readonly #readFds = new Map<number, number>()
  #active: { seg: number, fh: FileHandle } | undefined
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
   * Appends records in order and returns where each one went. Callers serialise appends (the
   * store's group commit does). With `durable`, every segment written is datasynced before this
   * resolves; a new segment's directory entry is synced too.
   */
  async append (records: RecordIn[]): Promise<Location[]> {
    const out: Location[] = []
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
        if (this.#durable) await active.fh.datasync()
      } catch (err) {
        // part of the batch may be in the file: start the next append in a new segment, so no
        // later record is placed after bytes the size count does not know of
        await this.roll()
        throw ioError(`cannot append to ${this.#path(active.seg)}`, err)
      }
      this.#sizes.set(active.seg, size)
      if (full || size >= this.#maxSegmentBytes) await this.roll()
    }
    return out
  }

  async #writable (): Promise<{ seg: number, fh: FileHandle }> {
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
        if (this.#durable) await syncDir(this.dir)
      }
      this.#active = { seg, fh }
      return this.#active
    } catch (err) {
      throw ioError(`cannot open ${this.#path(seg)} for appending`, err)
    }
  }

  /** Closes the active segment: the next append starts a new one (compaction empties the old ones). */
  async roll (): Promise<void> {
    this.#resume = false
    const active = this.#active
    if (active === undefined) return
    this.#active = undefined
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
    if (this.#active?.seg === seg) {
      const fh = this.#active.fh
      this.#active = undefined
      await fh.close().catch(() => {})
    }
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
  }

  async close (): Promise<void> {
    const active = this.#active
    this.#active = undefined
    if (active !== undefined) {
      if (this.#durable) await active.fh.datasync().catch(() => {})
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
