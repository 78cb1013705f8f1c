/**
 * A streaming CARv1 parser with limits. Chunks are pushed in as they arrive; every section that is
 * complete inside a chunk comes out as views into that chunk (no copy), and only a section split
 * across chunks is copied, once, into a buffer of exactly its size. So nothing beyond one section
 * is buffered: the header is capped at 64 KiB and each section at a block's maximum size plus its
 * CID, and a gateway that announces a huge section or streams forever cannot grow our memory.
 * Blocks come out unverified; the caller checks each against its CID.
 */
import { SwarmpackError, decodeCbor } from '@swarmpack/core'
import { CID } from 'multiformats/cid'
import { HttpErrorCode } from './errors.js'

const MAX_HEADER = 64 * 1024
/** Longest CID we accept in a section (CIDv1 + sha2-512 would be ~70 bytes). */
const MAX_CID_BYTES = 128
/** A varint longer than this cannot hold a safe integer. */
const MAX_VARINT = 8

export interface CarSection {
  cid: CID
  bytes: Uint8Array
}

/** A section as raw bytes: the CID's encoding and the block. */
export interface RawCarSection {
  cidBytes: Uint8Array
  bytes: Uint8Array
}

function badCar (message: string, source: string): SwarmpackError {
  return new SwarmpackError(HttpErrorCode.BAD_CAR, `${message} in CAR from ${source}`, { details: { source } })
}

/**
 * Decodes an unsigned varint at `pos`. Returns the value and its length, `undefined` if the bytes
 * end inside it, and throws on one that is too long.
 */
function readVarint (buf: Uint8Array, pos: number, source: string): [number, number] | undefined {
  let value = 0
  let mul = 1
  for (let i = 0; i < MAX_VARINT; i++) {
    if (pos + i >= buf.byteLength) return undefined
    const b = buf[pos + i]
    value += (b & 0x7f) * mul
    if (b < 0x80) {
      if (i > 0 && b === 0) throw badCar('non-minimal varint', source)
      return [value, i + 1]
    }
    mul *= 128
  }
  throw badCar('bad varint', source)
}

/** Length of the CID at the start of a section (CIDv0: 34 bytes; CIDv1: four varints and a digest). */
export function cidLength (section: Uint8Array, source: string): number {
  if (section.byteLength >= 2 && section[0] === 0x12 && section[1] === 0x20) return 34
  let pos = 0
  let digestLength = 0
  // version (must be 1), codec, multihash code, digest length
  for (let i = 0; i < 4; i++) {
    const v = readVarint(section, pos, source)
    if (v === undefined || (i === 0 && v[0] !== 1)) throw badCar('bad CID in section', source)
    pos += v[1]
    digestLength = v[0]
  }
  pos += digestLength
  if (pos > section.byteLength || pos > MAX_CID_BYTES) throw badCar('bad CID in section', source)
  return pos
}

/**
 * Push-style CARv1 parser. `push(chunk, out)` appends every section completed by `chunk` to
 * `out`; `end()` throws if the stream stopped inside the header or a section. The header is
 * checked when it completes and its roots are kept in `roots`.
 */
export class CarParser {
  roots: CID[] | undefined
  /** Bytes of an unfinished varint carried over to the next chunk (at most MAX_VARINT). */
  private tail: Uint8Array | undefined
  /** A section split across chunks: its buffer and how much of it is filled. */
  private partial: Uint8Array | undefined
  private filled = 0
  private readonly maxSection: number

  constructor (private readonly source: string, maxBlockSize: number) {
    this.maxSection = maxBlockSize + MAX_CID_BYTES
  }

  push (chunk: Uint8Array, out: RawCarSection[]): void {
    let buf = chunk
    let pos = 0
    if (this.partial !== undefined) {
      const take = Math.min(this.partial.byteLength - this.filled, buf.byteLength)
      this.partial.set(buf.subarray(0, take), this.filled)
      this.filled += take
      pos = take
      if (this.filled < this.partial.byteLength) return
      const section = this.partial
      this.partial = undefined
      this.section(section, out)
    } else if (this.tail !== undefined) {
      // Only a few bytes of a varint: join them to the chunk (one copy of this chunk, rarely).
      const joined = Buffer.allocUnsafe(this.tail.byteLength + buf.byteLength)
      joined.set(this.tail, 0)
      joined.set(buf, this.tail.byteLength)
      this.tail = undefined
      buf = joined
    }
    while (pos < buf.byteLength) {
      const v = readVarint(buf, pos, this.source)
      if (v === undefined) { this.tail = buf.slice(pos); return }
      const [length, used] = v
      this.checkLength(length)
      const start = pos + used
      const end = start + length
      if (end <= buf.byteLength) {
        this.section(buf.subarray(start, end), out)
        pos = end
      } else {
        // Allocated unzeroed: it is filled from the stream before anyone reads it.
        this.partial = Buffer.allocUnsafe(length)
        this.partial.set(buf.subarray(start), 0)
        this.filled = buf.byteLength - start
        return
      }
    }
  }

  end (): void {
    if (this.roots === undefined) throw badCar('missing or truncated header', this.source)
    if (this.partial !== undefined || this.tail !== undefined) throw badCar('truncated section', this.source)
  }

  private checkLength (length: number): void {
    if (this.roots === undefined) {
      if (length === 0 || length > MAX_HEADER) throw badCar('missing or oversized header', this.source)
    } else if (length > this.maxSection) {
      throw new SwarmpackError(HttpErrorCode.TOO_LARGE, `CAR section of ${length} bytes from ${this.source} exceeds ${this.maxSection}`, { details: { source: this.source } })
    }
  }

  private section (section: Uint8Array, out: RawCarSection[]): void {
    if (this.roots === undefined) { this.header(section); return }
    const n = cidLength(section, this.source)
    out.push({ cidBytes: section.subarray(0, n), bytes: section.subarray(n) })
  }

  private header (bytes: Uint8Array): void {
    let header: { version?: unknown, roots?: unknown }
    try {
      header = decodeCbor(bytes)
    } catch (err) {
      throw badCar(`undecodable header (${(err as Error).message})`, this.source)
    }
    if (header === null || typeof header !== 'object' || header.version !== 1 || !Array.isArray(header.roots)) {
      throw badCar('not a CARv1 header', this.source)
    }
    this.roots = header.roots.map(r => CID.asCID(r)).filter((c): c is CID => c !== null)
  }
}

/** Decodes a section's CID bytes, as a typed error if they are not a CID. */
export function decodeSectionCid (cidBytes: Uint8Array, source: string): CID {
  try {
    return CID.decode(cidBytes)
  } catch {
    throw badCar('bad CID in section', source)
  }
}

/**
 * Parses a CARv1 byte stream and yields every section with its CID decoded. Calls `onHeader` with
 * the roots first. `maxBlockSize` bounds each section's data.
 */
export async function * readCar (source: AsyncIterable<Uint8Array>, opts: {
  sourceName: string
  maxBlockSize: number
  onHeader?: (roots: CID[]) => void
}): AsyncGenerator<CarSection> {
  const parser = new CarParser(opts.sourceName, opts.maxBlockSize)
  let announced = false
  const out: RawCarSection[] = []
  for await (const chunk of source) {
    parser.push(chunk, out)
    if (!announced && parser.roots !== undefined) { announced = true; opts.onHeader?.(parser.roots) }
    for (const s of out) yield { cid: decodeSectionCid(s.cidBytes, opts.sourceName), bytes: s.bytes }
    out.length = 0
  }
  parser.end()
}
