/**
 * A streaming CARv1 reader with limits. It never buffers more than one section: the header is
 * capped at 64 KiB and each section at a block's maximum size plus its CID, so a gateway that
 * announces a huge section or streams forever cannot grow our memory. Blocks come out unverified;
 * the caller checks each against its CID.
 */
import { SwarmpackError, decodeCbor } from '@swarmpack/core'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import { HttpErrorCode } from './errors.js'

const MAX_HEADER = 64 * 1024
/** Longest CID we accept in a section (CIDv1 + sha2-512 would be ~70 bytes). */
const MAX_CID_BYTES = 128

export interface CarSection {
  cid: CID
  bytes: Uint8Array
}

function badCar (message: string, source: string): SwarmpackError {
  return new SwarmpackError(HttpErrorCode.BAD_CAR, `${message} in CAR from ${source}`, { details: { source } })
}

/** A queue of byte chunks from an async iterator, read in exact-sized pieces. */
class ByteQueue {
  private chunks: Uint8Array[] = []
  private head = 0
  length = 0
  private ended = false

  constructor (private readonly it: AsyncIterator<Uint8Array>) {}

  /** Pulls chunks until `n` bytes are buffered or the stream ends; returns whether `n` are there. */
  async fill (n: number): Promise<boolean> {
    while (this.length < n && !this.ended) {
      const r = await this.it.next()
      if (r.done === true) { this.ended = true; break }
      if (r.value.byteLength === 0) continue
      this.chunks.push(r.value)
      this.length += r.value.byteLength
    }
    return this.length >= n
  }

  /** Copies the first `n` buffered bytes without consuming them. */
  peek (n: number): Uint8Array {
    n = Math.min(n, this.length)
    const first = this.chunks[0]
    if (first !== undefined && first.byteLength - this.head >= n) return first.subarray(this.head, this.head + n)
    const out = new Uint8Array(n)
    let offset = 0
    let i = 0
    let start = this.head
    while (offset < n) {
      const c = this.chunks[i++]
      const take = Math.min(c.byteLength - start, n - offset)
      out.set(c.subarray(start, start + take), offset)
      offset += take
      start = 0
    }
    return out
  }

  /** Removes and returns the first `n` buffered bytes (call `fill(n)` first). */
  take (n: number): Uint8Array {
    const out = this.peek(n)
    this.skip(n)
    return out
  }

  private skip (n: number): void {
    this.length -= n
    while (n > 0) {
      const c = this.chunks[0]
      const avail = c.byteLength - this.head
      if (avail > n) { this.head += n; return }
      n -= avail
      this.chunks.shift()
      this.head = 0
    }
  }

  async readVarint (source: string): Promise<number | undefined> {
    await this.fill(10)
    if (this.length === 0) return undefined
    const bytes = this.peek(10)
    let value: number
    let used: number
    try {
      [value, used] = varint.decode(bytes)
    } catch {
      throw badCar('bad varint', source)
    }
    if (used === 0 || used > bytes.byteLength || !Number.isSafeInteger(value)) throw badCar('bad varint', source)
    this.skip(used)
    return value
  }
}

/**
 * Parses a CARv1 byte stream. Yields `{ roots }` first through `onHeader`, then every section.
 * `maxBlockSize` bounds each section's data.
 */
export async function * readCar (source: AsyncIterable<Uint8Array>, opts: {
  sourceName: string
  maxBlockSize: number
  onHeader?: (roots: CID[]) => void
}): AsyncGenerator<CarSection> {
  const q = new ByteQueue(source[Symbol.asyncIterator]())
  const name = opts.sourceName
  const headerLength = await q.readVarint(name)
  if (headerLength === undefined || headerLength === 0 || headerLength > MAX_HEADER) throw badCar('missing or oversized header', name)
  if (!await q.fill(headerLength)) throw badCar('truncated header', name)
  let header: { version?: unknown, roots?: unknown }
  try {
    header = decodeCbor(q.take(headerLength))
  } catch (err) {
    throw badCar(`undecodable header (${(err as Error).message})`, name)
  }
  if (header === null || typeof header !== 'object' || header.version !== 1 || !Array.isArray(header.roots)) {
    throw badCar('not a CARv1 header', name)
  }
  const roots = header.roots.map(r => CID.asCID(r)).filter((c): c is CID => c !== null)
  opts.onHeader?.(roots)
  const maxSection = opts.maxBlockSize + MAX_CID_BYTES
  while (true) {
    const length = await q.readVarint(name)
    if (length === undefined) return
    if (length > maxSection) {
      throw new SwarmpackError(HttpErrorCode.TOO_LARGE, `CAR section of ${length} bytes from ${name} exceeds ${maxSection}`, { details: { source: name } })
    }
    if (!await q.fill(length)) throw badCar('truncated section', name)
    const section = q.take(length)
    let cid: CID
    let bytes: Uint8Array
    try {
      [cid, bytes] = CID.decodeFirst(section)
    } catch {
      throw badCar('bad CID in section', name)
    }
    yield { cid, bytes }
  }
}
