/**
 * Content-defined chunking, FastCDC style (Xia et al., "FastCDC", USENIX ATC 2016 and the 2020
 * journal version): a gear rolling hash `h = (h << 1) + GEAR[byte]` is tested against a bit mask at
 * each byte; a cut happens where the masked bits are all zero. Because the hash only depends on
 * the last 32 bytes, boundaries follow the content: an insertion early in a file moves the bytes
 * after it, but the same boundaries are found again right after the edit, so only the chunks
 * around the edit change.
 *
 * Speed-ups from the paper, all kept here:
 * - nothing is hashed before `minSize` (a cut there is not allowed anyway);
 * - normalised chunking: a harder mask (more bits) before `avgSize` and an easier one after it, so
 *   chunk sizes cluster around the average and fewer tiny/huge chunks appear;
 * - a 32-bit hash and a signed Int32Array table keep the loop in small-integer arithmetic.
 * The mask bits are taken from the top of the word, the bits that depend on the most bytes.
 */
import { MAX_BLOCK_SIZE } from '../block.js'
import { CoreErrorCode, SwarmpackError } from '../errors.js'
import { GEAR } from './gear.js'

export interface ChunkerParams {
  /** No cut before this many bytes (except the last chunk of a file). */
  minSize: number
  /** Target average; must be a power of two. */
  avgSize: number
  /** Forced cut at this size; at most MAX_BLOCK_SIZE. */
  maxSize: number
  /** Normalisation level: mask bits added before / removed after avgSize (FastCDC "NC level"). */
  normalization: number
}

/**
 * Chosen with bench/chunking.bench.ts (figures in docs/benchmarks/core-content.md): on the
 * 100 MiB / 1.5 %-changed update test, avg 64 KiB stored ~2.2 % new bytes versus ~1.8 % for
 * 32 KiB and ~3.1 % for 128 KiB, with half the blocks of 32 KiB; 16 KiB gained little more dedup
 * for 4x the block count. Min = avg/4 skips a quarter of the hashing; max = 4 x avg bounds
 * the worst chunk well below the 1 MiB block limit.
 */
export const DEFAULT_CHUNKER: Readonly<ChunkerParams> = Object.freeze({
  minSize: 16 * 1024,
  avgSize: 64 * 1024,
  maxSize: 256 * 1024,
  normalization: 2
})

/** Masks precomputed for one parameter set. */
interface Cutter {
  min: number
  avg: number
  max: number
  /** Harder mask used before avgSize. */
  maskS: number
  /** Easier mask used after avgSize. */
  maskL: number
}

/** `bits` one-bits at the top of a 32-bit word, as a signed int. */
function topMask (bits: number): number {
  if (bits <= 0) return 0
  if (bits >= 32) return -1
  return ((0xffffffff << (32 - bits)) | 0)
}

export function validateChunkerParams (p: ChunkerParams): void {
  const ok = Number.isInteger(p.minSize) && Number.isInteger(p.avgSize) && Number.isInteger(p.maxSize) &&
    Number.isInteger(p.normalization) && p.normalization >= 0 && p.normalization <= 4 &&
    p.minSize >= 64 && p.minSize < p.avgSize && p.avgSize < p.maxSize && p.maxSize <= MAX_BLOCK_SIZE &&
    (p.avgSize & (p.avgSize - 1)) === 0
  if (!ok) {
    throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT,
      `invalid chunker parameters ${JSON.stringify(p)}: need 64 <= min < avg < max <= ${MAX_BLOCK_SIZE}, avg a power of two`)
  }
}

function makeCutter (p: ChunkerParams): Cutter {
  validateChunkerParams(p)
  const bits = Math.log2(p.avgSize)
  return { min: p.minSize, avg: p.avgSize, max: p.maxSize, maskS: topMask(bits + p.normalization), maskL: topMask(bits - p.normalization) }
}

/**
 * Length of the next chunk of `buf[start, end)`. If fewer than `max` bytes are given, they are
 * taken to be the end of the file (the caller only asks with less than max at end of input).
 */
function cutPoint (buf: Uint8Array, start: number, end: number, c: Cutter): number {
  let n = end - start
  if (n <= c.min) return n
  if (n > c.max) n = c.max
  const normal = n < c.avg ? n : c.avg
  const gear = GEAR
  const maskS = c.maskS
  const maskL = c.maskL
  let h = 0
  let i = start + c.min
  const stopS = start + normal
  for (; i < stopS; i++) {
    h = ((h << 1) + gear[buf[i]]) | 0
    if ((h & maskS) === 0) return i - start + 1
  }
  const stopL = start + n
  for (; i < stopL; i++) {
    h = ((h << 1) + gear[buf[i]]) | 0
    if ((h & maskL) === 0) return i - start + 1
  }
  return n
}

/**
 * Chunk lengths of one whole buffer, without copying (for tests and benchmarks; `chunkStream`
 * produces the same boundaries from a stream).
 */
export function chunkLengths (bytes: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER): number[] {
  const c = makeCutter(params)
  const out: number[] = []
  let pos = 0
  while (pos < bytes.length) {
    const n = cutPoint(bytes, pos, bytes.length, c)
    out.push(n)
    pos += n
  }
  return out
}

/**
 * Splits a stream of file contents into content-defined chunks. It holds at most 2 x maxSize
 * bytes, whatever the file size. Each yielded chunk is a fresh copy the caller may keep. An
 * empty input yields nothing.
 */
export async function * chunkStream (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, params: ChunkerParams = DEFAULT_CHUNKER): AsyncGenerator<Uint8Array, void, undefined> {
  const c = makeCutter(params)
  const cap = c.max * 2
  const buf = new Uint8Array(cap)
  let start = 0
  let end = 0
  for await (const piece of source) {
    let off = 0
    while (off < piece.length) {
      if (end === cap) {
        // Out of room: move the unconsumed tail (< max bytes) to the front. At most max bytes are
        // moved per max bytes of input, so this costs at most one extra copy.
        buf.copyWithin(0, start, end)
        end -= start
        start = 0
      }
      const n = Math.min(cap - end, piece.length - off)
      buf.set(n === piece.length ? piece : piece.subarray(off, off + n), end)
      end += n
      off += n
      while (end - start >= c.max) {
        const len = cutPoint(buf, start, end, c)
        yield buf.slice(start, start + len)
        start += len
      }
    }
  }
  while (end > start) {
    const len = cutPoint(buf, start, end, c)
    yield buf.slice(start, start + len)
    start += len
  }
}
