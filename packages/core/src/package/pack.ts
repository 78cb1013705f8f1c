/**
 * pack: streams a directory into blocks. Files are read in 1 MiB pieces, cut by the
 * content-defined chunker, hashed and written to the blockstore as they go, so memory stays at a
 * few MiB whatever the package size; only the manifest (paths and chunk CIDs) is kept. The same
 * tree always packs to the same root CID: paths are sorted, modes are reduced to 0o644/0o755 and
 * no timestamps or owners are recorded.
 */
import { constants, lstat, open, readdir, readlink } from 'node:fs/promises'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { Digest } from 'multiformats/hashes/digest'
import { CustomProgressEvent } from 'progress-events'
import type { ProgressEvent, ProgressOptions } from 'progress-events'
import { RAW_CODEC, SHA2_256_CODE } from '../block.js'
import { DEFAULT_CHUNKER, validateChunkerParams } from '../chunker/index.js'
import type { ChunkerParams } from '../chunker/index.js'
import { CoreErrorCode, SwarmpackError, isSwarmpackError, throwIfAborted } from '../errors.js'
import { createManifest, encodeManifest } from '../manifest/codec.js'
import { unsafePath, validateEntryPath, validateLinkTarget } from '../manifest/paths.js'
import type { Manifest, ManifestEntry, PackageMetadata } from '../manifest/types.js'
import { validatePackageName, validateVersion } from '../names.js'
import { rememberSha256 } from '../digest-memo.js'
import { ChunkHasher } from './chunk-hasher.js'
import type { ChunkReply } from './chunk-hasher.js'
import { CID_BYTES } from './chunk-protocol.js'
import { ChunkList, chunkCid, lazyChunks } from './hash.js'
import { PieceCutter } from './piece-cutter.js'


const log = logger('swarmpack:pack')

/** The part of the interface-blockstore contract pack needs (any Blockstore fits). */
export interface PutBlockstore {
  put(cid: CID, bytes: Uint8Array, options?: { signal?: AbortSignal }): unknown
  /**
   * True when the store keeps no reference to a put's bytes once the put has settled (it has
   * written them out, as FsBlockstore does). pack then reads later pieces into the buffers of
   * earlier ones instead of a fresh buffer per MiB; a store that keeps the bytes (MemoryBlockstore)
   * leaves it unset.
   */
  readonly releasesPutBytes?: boolean
}

export type PackProgressEvents =
  ProgressEvent<'swarmpack:pack:file', { path: string, size: number }> |
  ProgressEvent<'swarmpack:pack:chunk', { path: string, cid: CID, size: number, bytesDone: number }> |
  ProgressEvent<'swarmpack:pack:manifest', { root: CID, blocks: number }>

export interface PackOptions extends ProgressOptions<PackProgressEvents> {
  blockstore: PutBlockstore
  signal?: AbortSignal
  /** Chunker parameters; the default is what every node uses (changing it loses dedup). */
  chunker?: ChunkerParams
  /**
   * Block writes to the blockstore in flight at once (default 512, ~8 MiB of 16 KiB chunks). A
   * durable store syncs once per batch of the writes waiting, so the more in flight, the fewer
   * syncs per byte (FsBlockstore on this machine: ~35 MiB/s with 32 in flight, ~175 with 512).
   */
  window?: number
  /**
   * Chunking and hashing in a worker thread (1) or on the calling thread (0). Default: on the
   * calling thread until the files seen reach WORKER_THRESHOLD bytes, then in one worker for the
   * rest if a core is free (see `workerPays`). The output is the same either way.
   */
  workers?: 0 | 1
}

export interface PackResult {
  root: CID
  manifest: Manifest
  /** Bytes of file content. */
  totalSize: number
  /** Distinct blocks of the package (chunks and manifest blocks). */
  blocks: number
}

/**
 * Bytes of files after which pack (workers unset) may move chunking and hashing to a worker.
 * Starting one costs ~30-60 ms on this machine; it then takes 60-65 % of the calling thread's CPU
 * per MiB off it, which pays only from a few tens of MiB (docs/benchmarks/core-content.md, (a), (d)).
 */
export const WORKER_THRESHOLD = 64 * 1024 * 1024

/**
 * Whether pack (workers unset) uses the chunk worker: once the files seen reach WORKER_THRESHOLD,
 * and only if a core is likely free (1-minute load average at least one below the cores). With
 * no core free the two threads wait on each other's turns: on this 2-core machine at load 10-30,
 * the worker path ran at 0.55-0.97x of the calling thread.
 */
export function workerPays (bytesSeen: number, load1 = loadavg()[0], cores = availableParallelism(), threshold = WORKER_THRESHOLD): boolean {
  return bytesSeen >= threshold && cores - load1 >= 1
}

/**
 * Read size: large reads mean fewer system calls; with the chunk worker each piece is one message
 * there and back (2 and 4 MiB pieces cost the same CPU per byte on this machine; 1 MiB keeps less
 * in flight).
 */
const PIECE_SIZE = 1024 * 1024
/** Pieces sent to the chunk worker and not yet consumed (each up to PIECE_SIZE + maxSize bytes). */
const PIECES_IN_FLIGHT = 6

/** Read size once a file has given the bytes lstat reported (normally only to see the end). */
const PROBE_SIZE = 16 * 1024

/**
 * Read buffers of pieces whose chunks the store has written out (see `releasesPutBytes`), for the
 * next pieces. A buffer is handed back once every put of a chunk cut from it has settled.
 */
class PiecePool {
  readonly size: number
  readonly #free: ArrayBuffer[] = []

  constructor (size: number) { this.size = size }

  /** A buffer of at least `bytes` bytes: a free one when it fits, else a new one. */
  take (bytes: number): ArrayBuffer {
    return (bytes <= this.size ? this.#free.pop() : undefined) ?? Buffer.allocUnsafeSlow(Math.max(bytes, this.size)).buffer
  }

  give (buf: ArrayBuffer): void {
    // a buffer the worker replaced (no room for the carried bytes) has another size: dropped
    if (buf.byteLength === this.size && this.#free.length < POOL_MAX) this.#free.push(buf)
  }
}

/** Free buffers a PiecePool keeps at most (more are in use while the store's writes are in flight). */
const POOL_MAX = 16

/** A piece's buffer and the holds on it: the cutting loop's, and one per put not yet settled. */
interface Owner { buffer: ArrayBuffer, holds: number }

/**
 * Reads a file in pieces, each in a buffer of its own (from `pool` when the store lets buffers be
 * reused), with `headroom` free bytes in front of every piece but the first, where the cutter puts
 * the bytes carried from the previous piece instead of copying this one (piece-cutter.ts). The
 * next read is already running while a piece is handed on, and a piece is yielded only once the
 * read after it has returned, so the last piece is known to be final. O_NOFOLLOW: if the file was
 * swapped for a symlink since lstat, the open fails instead of following the link out of the tree.
 */
async function * readPieces (path: string, sizeHint: number, headroom: number, pool: PiecePool | undefined, signal?: AbortSignal): AsyncGenerator<{ bytes: Uint8Array, final: boolean }, void, undefined> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
  let total = 0
  const readNext = async (): Promise<Uint8Array> => {
    const head = total === 0 ? 0 : headroom
    const want = total < sizeHint ? Math.min(PIECE_SIZE, sizeHint - total + 1) : PROBE_SIZE
    const buf = pool?.take(head + want) ?? Buffer.allocUnsafeSlow(head + want).buffer
    const { bytesRead } = await fh.read(new Uint8Array(buf), head, want, null)
    total += bytesRead
    if (bytesRead === 0) pool?.give(buf)
    return new Uint8Array(buf, head, bytesRead)
  }
  let pending: Promise<Uint8Array> | undefined
  try {
    let held: Uint8Array | undefined
    pending = readNext()
    while (true) {
      throwIfAborted(signal)
      const piece = await pending
      pending = undefined
      if (piece.length === 0) break
      pending = readNext()
      if (held !== undefined) yield { bytes: held, final: false }
      held = piece
    }
    yield { bytes: held ?? new Uint8Array(0), final: true }
  } finally {
    await pending?.catch(() => {})
    await fh.close()
  }
}

function isPromise (value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

function byName (a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0 }

/** A file entry while its chunks are being cut and stored. */
interface PendingFile { type: 'pending', path: string, mode: number, size: number, list: ChunkList }

/**
 * Packs the directory `dir` with publisher `metadata` into `options.blockstore` and returns the
 * root CID. Refuses device files, fifos, sockets and symlinks leaving `dir` (ERR_UNSAFE_PATH).
 */
export async function pack (dir: string, metadata: PackageMetadata, options: PackOptions): Promise<PackResult> {
  validatePackageName(metadata.name)
  validateVersion(metadata.version)
  const { blockstore, signal, onProgress } = options
  const params = options.chunker ?? DEFAULT_CHUNKER
  validateChunkerParams(params)
  const window = options.window ?? 512
  const workers = options.workers
  if (workers !== undefined && workers !== 0 && workers !== 1) {
    throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `workers must be 0 or 1, not ${String(workers)}`)
  }
  const top = await lstat(dir)
  if (!top.isDirectory()) throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `${dir} is not a directory`)

  // File entries keep their chunk CIDs packed in a ChunkList until the manifest is built.
  const entries: Array<ManifestEntry | PendingFile> = []
  // Keyed by the digest in base64, not cid.toString(): that caches a base32 string and a Map
  // inside every CID, several hundred bytes per chunk kept until the manifest is dropped.
  const distinct = new Set<string>()
  let bytesDone = 0
  let bytesSeen = 0
  // Block writes in flight (up to `window`), awaited in order before the manifest is stored.
  const inflight: Array<Promise<unknown>> = []

  // Read buffers are reused when the store lets go of put bytes once written; each piece's buffer
  // goes back to the pool once the last put of a chunk cut from it has settled.
  const pool = blockstore.releasesPutBytes === true ? new PiecePool(params.maxSize + PIECE_SIZE) : undefined
  const release = (owner: Owner): void => {
    if (--owner.holds === 0) pool?.give(owner.buffer)
  }

  // Per chunk everything is synchronous (record, put) except the blockstore write; up to `window`
  // writes are left in flight. No generator or promise per chunk unless the store is async.
  const handle = (file: PendingFile, chunk: Uint8Array, cid: CID, owner: Owner): Promise<unknown> | undefined => {
    throwIfAborted(signal)
    file.list.add(cid, chunk.length)
    const d = cid.multihash.digest
    distinct.add(Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64'))
    bytesDone += chunk.length
    onProgress?.(new CustomProgressEvent('swarmpack:pack:chunk', { path: file.path, cid, size: chunk.length, bytesDone }))
    // FsBlockstore does not hash the chunk again: its digest is remembered (see digest-memo.ts)
    const put = blockstore.put(cid, chunk, { signal })
    if (!isPromise(put)) return undefined
    const pending = Promise.resolve(put)
    if (pool !== undefined) {
      owner.holds++
      const done = (): void => { release(owner) }
      pending.then(done, done)
    } else {
      pending.catch(() => {}) // awaited below, in order; never an unhandled rejection meanwhile
    }
    inflight.push(pending)
    return inflight.length >= window ? inflight.shift() : undefined
  }
  const fileDone = (file: PendingFile): void => {
    file.size = file.list.sizes.reduce((a, n) => a + n, 0)
    onProgress?.(new CustomProgressEvent('swarmpack:pack:file', { path: file.path, size: file.size }))
  }

  // On the calling thread: read, cut (each chunk a view into its piece), hash (chunkCid remembers
  // the digest), store.
  let cutter: PieceCutter | undefined
  const packInThread = async (abs: string, file: PendingFile, sizeHint: number): Promise<void> => {
    cutter ??= new PieceCutter(params)
    for await (const { bytes, final } of readPieces(abs, sizeHint, cutter.headroom, pool, signal)) {
      const { data, lengths } = cutter.cut(bytes, final)
      // the carried bytes went into this piece's headroom; a copy (no room) frees the piece at once
      if (data.buffer !== bytes.buffer) pool?.give(bytes.buffer as ArrayBuffer)
      const owner: Owner = { buffer: data.buffer as ArrayBuffer, holds: 1 }
      let pos = 0
      for (const n of lengths) {
        const chunk = data.subarray(pos, pos += n)
        const wait = handle(file, chunk, chunkCid(chunk), owner)
        if (wait !== undefined) await wait
      }
      release(owner)
    }
    fileDone(file)
  }

  // In the chunk worker: this thread reads pieces and sends them on without waiting for a file to
  // finish (small files pipeline); replies are consumed in order once PIECES_IN_FLIGHT are out.
  let hasher: ChunkHasher | undefined
  const sent: Array<{ reply: Promise<ChunkReply>, file: PendingFile, final: boolean }> = []
  const consumeReply = async (): Promise<void> => {
    const { reply, file, final } = sent.shift() as typeof sent[number]
    const { bytes, lengths, cids } = await reply
    const owner: Owner = { buffer: bytes.buffer as ArrayBuffer, holds: 1 }
    let pos = 0
    for (let i = 0; i < lengths.length; i++) {
      const chunk = bytes.subarray(pos, pos + lengths[i])
      pos += lengths[i]
      const cidBytes = cids.subarray(i * CID_BYTES, (i + 1) * CID_BYTES)
      const digest = cidBytes.subarray(4)
      // hashed in the worker over this very memory, which was then moved (not copied) here
      rememberSha256(chunk, digest)
      const cid = new CID(1, RAW_CODEC, new Digest(SHA2_256_CODE, 32, digest, cidBytes.subarray(2)), cidBytes)
      const wait = handle(file, chunk, cid, owner)
      if (wait !== undefined) await wait
    }
    release(owner)
    if (final) fileDone(file)
  }
  const packInWorker = async (abs: string, file: PendingFile, sizeHint: number): Promise<void> => {
    hasher ??= new ChunkHasher({ params, signal })
    for await (const { bytes, final } of readPieces(abs, sizeHint, params.maxSize, pool, signal)) {
      const reply = hasher.submit(bytes, final)
      reply.catch(() => {}) // consumed in order below
      sent.push({ reply, file, final })
      while (sent.length >= PIECES_IN_FLIGHT) await consumeReply()
    }
  }

  const walk = async (absDir: string, relDir: string): Promise<void> => {
    const names = (await readdir(absDir)).sort(byName)
    for (const name of names) {
      throwIfAborted(signal)
      const abs = join(absDir, name)
      const path = relDir === '' ? name : `${relDir}/${name}`
      validateEntryPath(path)
      const st = await lstat(abs)
      if (st.isDirectory()) {
        entries.push({ type: 'dir', path, mode: 0o755 })
        await walk(abs, path)
      } else if (st.isFile()) {
        const file: PendingFile = { type: 'pending', path, mode: (st.mode & 0o111) !== 0 ? 0o755 : 0o644, size: 0, list: new ChunkList() }
        entries.push(file)
        bytesSeen += st.size
        const inWorker = workers === 1 || (workers === undefined && (hasher !== undefined || workerPays(bytesSeen)))
        await (inWorker ? packInWorker(abs, file, st.size) : packInThread(abs, file, st.size))
      } else if (st.isSymbolicLink()) {
        const target = await readlink(abs)
        validateLinkTarget(path, target)
        entries.push({ type: 'symlink', path, target })
      } else {
        throw unsafePath(path, 'device files, fifos and sockets cannot be packed')
      }
    }
  }
  try {
    await walk(dir, '')
    while (sent.length > 0) await consumeReply()
    for (const p of inflight) await p
  } catch (err) {
    // a store or the file system may notice the abort first, with an error of its own
    if (signal?.aborted === true && !isSwarmpackError(err, CoreErrorCode.ABORTED)) {
      throw new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted', { cause: signal.reason })
    }
    throw err
  } finally {
    for (const { reply } of sent) reply.catch(() => {})
    await hasher?.close()
  }

  // The encoder reads every chunk ref through a view that builds it on the spot (all of them at
  // once were ~25 MiB of heap for a 1 GiB package, pack's peak); the result's refs are built when
  // first read.
  const lists = new Map<ManifestEntry, ChunkList>()
  const manifest = createManifest(metadata, entries.map((e): ManifestEntry => {
    if (e.type !== 'pending') return e
    const file: ManifestEntry = { type: 'file', path: e.path, mode: e.mode, size: e.size, chunks: e.list.view() }
    lists.set(file, e.list)
    return file
  }))
  const encoded = encodeManifest(manifest)
  for (const [file, list] of lists) lazyChunks(file as { chunks: Array<[CID, number]> }, list)
  for (const block of encoded.blocks) {
    throwIfAborted(signal)
    await blockstore.put(block.cid, block.bytes, { signal })
  }
  const blocks = distinct.size + encoded.blocks.length
  onProgress?.(new CustomProgressEvent('swarmpack:pack:manifest', { root: encoded.root.cid, blocks: encoded.blocks.length }))
  log('packed %s@%s: %d bytes, %d entries, %d blocks, root %s%s', manifest.name, manifest.version, manifest.totalSize, entries.length, blocks, encoded.root.cid, hasher === undefined ? '' : ' (chunk worker)')
  return { root: encoded.root.cid, manifest, totalSize: manifest.totalSize, blocks }
}
