/**
 * Chunk hashing for pack. A chunk is hashed inline with core's `sha256Of` (node:crypto's one-shot
 * `hash()`): at 16 KiB chunks, WebCrypto's thread-pool digest cost twice the CPU per chunk (a copy
 * of the input, a promise and a job each), which loses on a busy machine. `sha256Of` remembers the
 * digest, so the store's put trusts it instead of hashing the chunk again.
 */
import { CID } from 'multiformats/cid'
import { Digest, create as createDigest } from 'multiformats/hashes/digest'
import { MAX_BLOCK_SIZE, RAW_CODEC, SHA2_256_CODE, sha256Of } from '../block.js'
import { CoreErrorCode, SwarmpackError } from '../errors.js'

/** CID of a raw chunk (CIDv1, raw codec, sha2-256). */
export function chunkCid (bytes: Uint8Array): CID {
  if (bytes.byteLength > MAX_BLOCK_SIZE) {
    throw new SwarmpackError(CoreErrorCode.BLOCK_TOO_LARGE, `block of ${bytes.byteLength} bytes exceeds ${MAX_BLOCK_SIZE}`)
  }
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256_CODE, sha256Of(bytes)))
}

/** Bytes of a raw sha2-256 CIDv1: version, codec, hash code, digest length, then the digest. */
export const RAW_CID_BYTES = 36

/**
 * The CIDs of a file's chunks, packed into one growing byte array (36 bytes a chunk) instead of
 * one CID object each while the file streams through: a 1 GiB package has ~65k chunks, and CID
 * objects with their own buffers cost ~850 bytes each. `cids()` builds CID objects that are views
 * into the array, at the end.
 */
export class ChunkList {
  #bytes: Uint8Array
  readonly sizes: number[] = []

  /** `capacity`: chunks expected (the array still grows past it). */
  constructor (capacity = 16) {
    this.#bytes = new Uint8Array(RAW_CID_BYTES * Math.max(1, capacity))
  }

  /** A list holding `refs` (raw sha2-256 CIDv1 only, ERR_INVALID_ARGUMENT otherwise). */
  static from (refs: ReadonlyArray<[CID, number]>): ChunkList {
    const list = new ChunkList(refs.length)
    for (const [cid, size] of refs) list.add(cid, size)
    return list
  }

  add (cid: CID, size: number): void {
    if (cid.bytes.length !== RAW_CID_BYTES) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `not a raw sha2-256 CIDv1: ${cid.toString()}`)
    const n = this.sizes.length
    if ((n + 1) * RAW_CID_BYTES > this.#bytes.length) {
      const grown = new Uint8Array(this.#bytes.length * 2)
      grown.set(this.#bytes)
      this.#bytes = grown
    }
    this.#bytes.set(cid.bytes, n * RAW_CID_BYTES)
    this.sizes.push(size)
  }

  get length (): number { return this.sizes.length }

  /** The i-th [CID, size] pair, its CID a view into this list's bytes (built on demand). */
  ref (i: number): [CID, number] {
    return [rawCidView(this.#bytes, i), this.sizes[i]]
  }

  /** Indices 0..length-1, for iterating lazily with `ref`. */
  * indices (): Generator<number, void, undefined> {
    for (let i = 0; i < this.sizes.length; i++) yield i
  }

  /**
   * A read-only array of the [CID, size] pairs that builds each pair when it is read and keeps
   * none: encoding a manifest walks every chunk ref, and building all of them at once (~480 bytes
   * of heap a chunk, ~25 MiB for a 1 GiB package) was pack's peak. What the encoder reads dies young.
   */
  view (): Array<[CID, number]> {
    const n = this.sizes.length
    const index = (prop: string | symbol): number => {
      if (typeof prop !== 'string' || prop === '') return -1
      const i = Number(prop)
      return Number.isInteger(i) && i >= 0 && i < n && String(i) === prop ? i : -1
    }
    const readOnly = (): never => { throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'a chunk list view is read-only') }
    // the target is an empty array of the right length, so Array.isArray, length and iteration work
    return new Proxy(new Array<[CID, number]>(n), {
      get: (target, prop, receiver) => {
        const i = index(prop)
        return i >= 0 ? this.ref(i) : Reflect.get(target, prop, receiver)
      },
      has: (target, prop) => index(prop) >= 0 || Reflect.has(target, prop),
      set: readOnly,
      defineProperty: readOnly,
      deleteProperty: readOnly
    })
  }

  /** [CID, size] pairs whose CIDs share this list's bytes. */
  refs (): Array<[CID, number]> {
    const bytes = this.#bytes.slice(0, this.sizes.length * RAW_CID_BYTES)
    return this.sizes.map((size, i) => [rawCidView(bytes, i), size])
  }
}

/** The i-th raw sha2-256 CIDv1 of a packed array, as a CID whose bytes are a view into it. */
function rawCidView (packed: Uint8Array, i: number): CID {
  const cidBytes = packed.subarray(i * RAW_CID_BYTES, (i + 1) * RAW_CID_BYTES)
  return new CID(1, RAW_CODEC, new Digest(SHA2_256_CODE, 32, cidBytes.subarray(4), cidBytes.subarray(2)), cidBytes)
}

/**
 * Makes `e.chunks` build its refs from `list` on first read (then a plain data property): a
 * package's result manifest holds every chunk ref, and a caller that never reads them (most do
 * not) then never pays for them.
 */
export function lazyChunks (e: { chunks: Array<[CID, number]> }, list: ChunkList): void {
  Object.defineProperty(e, 'chunks', {
    configurable: true,
    enumerable: true,
    get () {
      const chunks = list.refs()
      Object.defineProperty(e, 'chunks', { value: chunks, writable: true, enumerable: true, configurable: true })
      return chunks
    },
    set (chunks: Array<[CID, number]>) {
      Object.defineProperty(e, 'chunks', { value: chunks, writable: true, enumerable: true, configurable: true })
    }
  })
}

/**
 * The same [CID, size] pairs with CIDs re-built as views into one packed array: about 480 instead
 * of ~790 bytes of heap per chunk for CIDs fresh from the dag-cbor decoder. Only raw sha2-256 CIDv1
 * (the only kind a manifest accepts) are expected.
 */
export function compactChunkRefs (refs: Array<[CID, number]>): Array<[CID, number]> {
  return ChunkList.from(refs).refs()
}

/**
 * Runs `work` on items from `source` with at most `window` in flight and yields the results in
 * input order. Rejections are held until their turn, so none goes unhandled meanwhile.
 */
export async function * orderedWindow<T, R> (source: AsyncIterable<T> | Iterable<T>, window: number, work: (item: T) => Promise<R>): AsyncGenerator<R, void, undefined> {
  const pending: Array<Promise<R>> = []
  try {
    for await (const item of source) {
      const p = work(item)
      p.catch(() => {})
      pending.push(p)
      if (pending.length >= window) yield await (pending.shift() as Promise<R>)
    }
    while (pending.length > 0) yield await (pending.shift() as Promise<R>)
  } finally {
    // On early exit, let the work still running settle quietly.
    for (const p of pending) p.catch(() => {})
  }
}
