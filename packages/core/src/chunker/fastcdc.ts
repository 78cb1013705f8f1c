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
import { CoreErrorCode, SwarmpackError } from '../errors.js'
import { MAX_BLOCK_SIZE } from '../limits.js'
import { GEAR } from './gear.js'
import { WASM_DATA_OFFSET, createWasmCutter } from './wasm.js'
import type { WasmCutter } from './wasm.js'

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
 * Chosen with bench/chunking.bench.ts and bench/pack.bench.ts (figures and commands in
 * docs/benchmarks/core-content.md), weighing the bytes an update must fetch against the number of
 * blocks a package needs:
 *   candidate (min/avg/max, NC)  blocks per 100 MiB  update test  typescript 5.8.2->5.8.3
 *   2K/8K/32K nc1                11061               2.05 %       0.74 %
 *   4K/16K/64K nc1 (chosen)       5942               2.69 %       1.81 %
 *   8K/16K/64K nc1                5451               2.88 %       1.83 %
 *   4K/16K/64K nc2                6156               3.17 %       1.18 %
 *   8K/32K/128K nc2               3593               4.59 %       2.52 %
 *   16K/64K/256K nc2              2356               7.59 %       4.73 %
 *   fixed 256 KiB                 1390              35.9 %       47.2 %
 * ("update test": bytes in chunks new in v2 as a share of v2, 100 MiB tree with 1.5 % changed by
 * 40 edits/insertions in ten files, median of three edit placements.) The target is at most 3 %
 * *including* the new manifest blocks (about 0.3 % at 16 KiB chunks), so chunks must stay near
 * 2.7 %: an average of 16 KiB is the largest that gets there; 8 KiB would cut the update cost by a
 * quarter but double the blocks (one file in the store, one want in Bitswap each). NC level 1
 * resynchronises sooner after an edit than level 2; min 4 KiB rather than 8 KiB buys 0.2 points
 * for little speed now that the boundary search runs in WebAssembly. max = 4 x avg, far below the
 * 1 MiB block limit. Changing these changes every chunk boundary, and dedup with older releases.
 */
export const DEFAULT_CHUNKER: Readonly<ChunkerParams> = Object.freeze({
  minSize: 4 * 1024,
  avgSize: 16 * 1024,
  maxSize: 64 * 1024,
  normalization: 1
})

/** Masks precomputed for one parameter set. */
interface Cutter {
  min: number
  avg: number
  max: number
  /** Harder mask used before avgSize, and the same mask shifted left by one (see cutPoint). */
  maskS: number
  maskSls: number
  /** Easier mask used after avgSize, and shifted. */
  maskL: number
  maskLls: number
}

/**
 * `bits` one-bits ending at bit 30. High bits depend on the most bytes of the window (bit k on
 * the last k+1 bytes); bit 31 is left out so the mask shifted left by one still fits 32 bits.
 */
function highMask (bits: number): number {
  if (bits <= 0) return 0
  return (((2 ** bits) - 1) * (2 ** (31 - bits))) | 0
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
  const maskS = highMask(bits + p.normalization)
  const maskL = highMask(bits - p.normalization)
  return { min: p.minSize, avg: p.avgSize, max: p.maxSize, maskS, maskSls: (maskS << 1) | 0, maskL, maskLls: (maskL << 1) | 0 }
}

/** The gear table shifted left by one, for the two-bytes-per-step loop. */
const GEAR_LS = GEAR.map(g => (g << 1) | 0)

/**
 * Length of the next chunk of `buf[start, end)`. If fewer than `max` bytes are given, they are
 * taken to be the end of the file (the caller only asks with less than max at end of input).
 *
 * Two bytes per step (FastCDC 2020): for h' = (h << 2) + GEAR_LS[a] = h_a << 1, testing
 * h' against mask << 1 equals testing h_a against mask; then h_b = h' + GEAR[b]. Same cut points
 * as one byte per step, with half the loop overhead.
 */
function cutPoint (buf: Uint8Array, start: number, end: number, c: Cutter): number {
  let n = end - start
  if (n <= c.min) return n
  if (n > c.max) n = c.max
  const normal = n < c.avg ? n : c.avg
  const gear = GEAR
  const gearLs = GEAR_LS
  let h = 0
  let i = start + c.min
  const stopS = start + normal
  let mask = c.maskS
  let maskLs = c.maskSls
  for (; i + 1 < stopS; i += 2) {
    h = ((h << 2) + gearLs[buf[i]]) | 0
    if ((h & maskLs) === 0) return i - start + 1
    h = (h + gear[buf[i + 1]]) | 0
    if ((h & mask) === 0) return i - start + 2
  }
  if (i < stopS) {
    h = ((h << 1) + gear[buf[i]]) | 0
    if ((h & mask) === 0) return i - start + 1
    i++
  }
  const stopL = start + n
  mask = c.maskL
  maskLs = c.maskLls
  for (; i + 1 < stopL; i += 2) {
    h = ((h << 2) + gearLs[buf[i]]) | 0
    if ((h & maskLs) === 0) return i - start + 1
    h = (h + gear[buf[i + 1]]) | 0
    if ((h & mask) === 0) return i - start + 2
  }
  if (i < stopL) {
    h = ((h << 1) + gear[buf[i]]) | 0
    if ((h & mask) === 0) return i - start + 1
  }
  return n
}

/**
 * Length of the next chunk of `buf[start, end)` (as cutPoint), in WebAssembly when `wasm` holds a
 * mirror of `buf` at the same offsets.
 */
function nextCut (buf: Uint8Array, start: number, end: number, c: Cutter, wasm: WasmCutter | undefined): number {
  if (wasm === undefined) return cutPoint(buf, start, end, c)
  let n = end - start
  if (n <= c.min) return n
  if (n > c.max) n = c.max
  return wasm.cut(WASM_DATA_OFFSET + start, n, c.min, n < c.avg ? n : c.avg, c.maskS, c.maskL)
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
 * Splits a stream of file contents into content-defined chunks. Input is copied into windows of
 * WINDOW_SIZE bytes and each chunk is a view into its window: no allocation or copy per chunk
 * (at 16 KiB chunks, a fresh array per chunk cost as much as the hashing). A window is never
 * written again once chunks point into it; when full, only the unconsumed tail (< maxSize) moves
 * to a new one. So a caller may keep the chunks it gets (a kept chunk keeps its window alive),
 * and memory stays at about two windows whatever the file size. An empty input yields nothing.
 *
 * The boundary search runs in WebAssembly (wasm.ts) over a mirror of the window in its memory;
 * it finds exactly the cut points of the JavaScript `cutPoint` (a test checks both against a
 * reference), which is kept as the fallback and for `chunkLengths`.
 */
export async function * chunkStream (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, params: ChunkerParams = DEFAULT_CHUNKER): AsyncGenerator<Uint8Array, void, undefined> {
  const chunker = new Chunker(params)
  try {
    for await (const piece of source) yield * chunker.push(piece)
    yield * chunker.finish()
  } finally {
    chunker.close()
  }
}

/**
 * The push-style chunker behind chunkStream, for callers that want no await per chunk (pack):
 * `push(piece)` returns the chunks completed so far, `finish()` the rest at end of input, and
 * `close()` hands the WebAssembly instance back to the pool. Chunks are views into windows, as
 * described at chunkStream, and stay valid after later calls.
 */
export class Chunker {
  readonly #c: Cutter
  readonly #size: number
  #wasm: WasmCutter | undefined
  #buf = new Uint8Array(0)
  #start = 0
  #end = 0

  constructor (params: ChunkerParams = DEFAULT_CHUNKER) {
    this.#c = makeCutter(params)
    this.#size = Math.max(WINDOW_SIZE, this.#c.max * 4)
    this.#wasm = acquireCutter(this.#size)
  }

  #next (): number {
    return nextCut(this.#buf, this.#start, this.#end, this.#c, this.#wasm)
  }

  push (piece: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    const max = this.#c.max
    const mirror = this.#wasm?.window
    let off = 0
    while (off < piece.length) {
      if (this.#end === this.#buf.length) {
        // The first window is only as large as the first piece when that is smaller (a small
        // file is usually one short read): no 1 MiB allocation per small file.
        const fresh = new Uint8Array(this.#buf.length === 0 && piece.length < this.#size ? piece.length : this.#size)
        fresh.set(this.#buf.subarray(this.#start, this.#end))
        mirror?.copyWithin(0, this.#start, this.#end)
        this.#buf = fresh
        this.#end -= this.#start
        this.#start = 0
      }
      const n = Math.min(this.#buf.length - this.#end, piece.length - off)
      const part = n === piece.length ? piece : piece.subarray(off, off + n)
      this.#buf.set(part, this.#end)
      mirror?.set(part, this.#end)
      this.#end += n
      off += n
      while (this.#end - this.#start >= max) {
        const len = this.#next()
        out.push(this.#buf.subarray(this.#start, this.#start + len))
        this.#start += len
      }
    }
    return out
  }

  finish (): Uint8Array[] {
    const out: Uint8Array[] = []
    while (this.#end > this.#start) {
      const len = this.#next()
      out.push(this.#buf.subarray(this.#start, this.#start + len))
      this.#start += len
    }
    return out
  }

  close (): void {
    if (this.#wasm !== undefined) releaseCutter(this.#size, this.#wasm)
    this.#wasm = undefined
  }
}

/**
 * Chunk boundaries in a caller's buffer, without copying chunks out (pack's chunk worker hashes
 * them in place and hands the buffer on). The same cuts as Chunker: a cut is made once at least
 * maxSize bytes follow its start, or anywhere at the end of the file. `lengths(bytes, final)`
 * returns the lengths of the chunks cut from the start of `bytes`; when not `final`, the bytes
 * after them (fewer than maxSize) begin the next chunk, and the caller passes them again at the
 * start of the next call.
 */
export class BoundaryCutter {
  readonly #c: Cutter
  #wasm: WasmCutter | undefined
  #capacity = 0

  constructor (params: ChunkerParams = DEFAULT_CHUNKER) {
    this.#c = makeCutter(params)
  }

  lengths (bytes: Uint8Array, final: boolean): number[] {
    const c = this.#c
    if (bytes.length > this.#capacity) {
      // one instance, grown only for a larger input (pack sends slices of at most ~1 MiB + max)
      this.#capacity = Math.max(bytes.length, WINDOW_SIZE + 2 * c.max)
      this.#wasm = createWasmCutter(this.#capacity)
    }
    this.#wasm?.window.set(bytes)
    const out: number[] = []
    let pos = 0
    while (final ? pos < bytes.length : bytes.length - pos >= c.max) {
      const len = nextCut(bytes, pos, bytes.length, c, this.#wasm)
      out.push(len)
      pos += len
    }
    return out
  }
}

/** WebAssembly instances (each with its own memory) reused across streams, per window size. */
const cutterPool = new Map<number, WasmCutter[]>()
const POOL_LIMIT = 4

function acquireCutter (size: number): WasmCutter | undefined {
  return cutterPool.get(size)?.pop() ?? createWasmCutter(size)
}

function releaseCutter (size: number, cutter: WasmCutter): void {
  let list = cutterPool.get(size)
  if (list === undefined) { list = []; cutterPool.set(size, list) }
  if (list.length < POOL_LIMIT) list.push(cutter)
}

/** Bytes per chunking window (see chunkStream). */
const WINDOW_SIZE = 1024 * 1024
