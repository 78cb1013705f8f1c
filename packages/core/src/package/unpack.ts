/**
 * unpack: rebuilds a package directory from its root CID. Nothing is trusted: the manifest is
 * verified and schema-checked (paths, links, sizes) before anything touches the disk, every chunk
 * is verified against its CID and its declared size as it arrives, and all writing happens in a
 * staging directory next to the target (`<target>.staging-<random>`), which is renamed into place
 * only when everything checked out. On any failure the staging directory is removed and the
 * target does not exist.
 */
import { randomBytes } from 'node:crypto'
import { constants, chmod, lstat, mkdir, open, rename, rm, symlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { logger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent } from 'progress-events'
import type { ProgressEvent, ProgressOptions } from 'progress-events'
import { MAX_BLOCK_SIZE, verifyBlock } from '../block.js'
import { CoreErrorCode, SwarmpackError, throwIfAborted } from '../errors.js'
import { loadManifestPacked } from '../manifest/codec.js'
import type { BlockGetter } from '../manifest/codec.js'
import type { FileEntry, Manifest } from '../manifest/types.js'
import type { BlockReader } from '../store/provider.js'
import { asTypedIoError } from './errors.js'
import { ChunkList, lazyChunks, orderedWindow } from './hash.js'

const log = logger('swarmpack:unpack')

export type UnpackProgressEvents =
  ProgressEvent<'swarmpack:unpack:manifest', { root: CID, entries: number, totalSize: number }> |
  ProgressEvent<'swarmpack:unpack:chunk', { path: string, cid: CID, size: number, bytesDone: number, totalSize: number }> |
  ProgressEvent<'swarmpack:unpack:file', { path: string, size: number }>

export interface UnpackOptions extends ProgressOptions<UnpackProgressEvents> {
  signal?: AbortSignal
  /** Chunks fetched ahead, per file (default 8). */
  window?: number
}

export interface UnpackResult {
  root: CID
  manifest: Manifest
  totalSize: number
  /** Directory written (the target). */
  path: string
}

/** Bytes gathered before one write. */
const WRITE_BATCH = 1024 * 1024

async function exists (path: string): Promise<boolean> {
  try { await lstat(path); return true } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/**
 * Unpacks the package `root` from `source` (any Provider, or a blockstore adapter with `get`)
 * into `targetDir`, which must not exist yet (ERR_TARGET_EXISTS); its missing parent directories
 * are created. A file system failure surfaces as ERR_IO with the original error as `cause`.
 */
export async function unpack (root: CID, source: BlockGetter, targetDir: string, options: UnpackOptions = {}): Promise<UnpackResult> {
  try {
    return await unpackInto(root, source, targetDir, options)
  } catch (err) {
    throw asTypedIoError(err, `cannot unpack ${root.toString()} into ${targetDir}`)
  }
}

async function unpackInto (root: CID, source: BlockGetter, targetDir: string, options: UnpackOptions): Promise<UnpackResult> {
  const { signal, onProgress } = options
  const window = options.window ?? 8
  if (await exists(targetDir)) throw new SwarmpackError(CoreErrorCode.TARGET_EXISTS, `${targetDir} already exists`, { details: { path: targetDir } })

  // Each file's chunk CIDs are packed into a ChunkList (36 bytes a chunk) as soon as their page or
  // chunk-list block is decoded: a 1 GiB package has ~55k chunks, ~790 bytes of heap each as CID
  // objects fresh from the decoder, and decoding them all before packing kept ~45 MiB alive until
  // a major GC. While writing, a CID object is made only for the chunk being fetched; the result's
  // manifest gets compact CID views back at the end, once the block buffers are gone.
  const { manifest, lists } = await loadManifestPacked(root, source, { signal, newList: () => new ChunkList() })
  onProgress?.(new CustomProgressEvent('swarmpack:unpack:manifest', { root, entries: manifest.entries.length, totalSize: manifest.totalSize }))

  // Staging lives next to the target (same file system, so the final rename is atomic); missing
  // parents of the target are created first.
  await mkdir(dirname(targetDir), { recursive: true, mode: 0o755 })
  const staging = join(dirname(targetDir), `${basename(targetDir)}.staging-${randomBytes(6).toString('hex')}`)
  await mkdir(staging, { mode: 0o700 })
  let bytesDone = 0
  try {
    // Directories first (sorted, so parents come first; implied parents are created too). The
    // manifest check guarantees no entry lies below a file or symlink, and symlinks are only made
    // at the very end, so nothing written here can go through a link.
    for (const e of manifest.entries) {
      if (e.type === 'dir') await mkdir(join(staging, e.path), { recursive: true, mode: 0o755 })
    }
    // Verified chunks are gathered in a 1 MiB buffer and written with one write per ~1 MiB (a write
    // per 16 KiB chunk would be 64 system calls per MiB); two buffers, so the next one fills while
    // one is written. A source that reads into a buffer (the local store) puts each chunk straight
    // there: no buffer per block. Otherwise each block is copied in, which lets block buffers die
    // young: held across several scavenges they were promoted and stayed until a major GC (~30 MiB).
    const reader = typeof (source as Partial<BlockReader>).readInto === 'function' ? source as BlockGetter & BlockReader : undefined
    const batches = [new Uint8Array(Math.max(WRITE_BATCH, MAX_BLOCK_SIZE)), new Uint8Array(Math.max(WRITE_BATCH, MAX_BLOCK_SIZE))]
    const writeFile = async (e: FileEntry): Promise<void> => {
      const abs = join(staging, e.path)
      await mkdir(dirname(abs), { recursive: true, mode: 0o755 })
      // O_EXCL: never write into something that already exists (a duplicate that slipped through).
      const fh = await open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
      let writing: Promise<void> | undefined
      try {
        const list = lists.get(e) as ChunkList
        const mismatch = (cid: CID, got: number, size: number): SwarmpackError =>
          new SwarmpackError(CoreErrorCode.SIZE_MISMATCH, `chunk ${cid.toString()} of ${e.path} has ${got} bytes, manifest says ${size}`, { details: { path: e.path, cid: cid.toString() } })
        const fetchChunk = async (index: number): Promise<Uint8Array> => {
          throwIfAborted(signal)
          const [cid, size] = list.ref(index)
          const bytes = await source.get(cid, { signal })
          verifyBlock(cid, bytes)
          if (bytes.length !== size) throw mismatch(cid, bytes.length, size)
          return bytes
        }
        let written = 0
        let k = 0
        let fill = 0
        const flush = async (): Promise<void> => {
          await writing
          const batch = batches[k]
          const end = fill
          writing = (async () => {
            let off = 0
            while (off < end) off += (await fh.write(batch, off, end - off)).bytesWritten
          })()
          writing.catch(() => {}) // awaited before the next flush and at the end
          k ^= 1
          fill = 0
        }
        const added = (cid: CID, size: number): void => {
          fill += size
          written += size
          bytesDone += size
          onProgress?.(new CustomProgressEvent('swarmpack:unpack:chunk', { path: e.path, cid, size, bytesDone, totalSize: manifest.totalSize }))
        }
        if (reader !== undefined) {
          for (let i = 0; i < list.length; i++) {
            throwIfAborted(signal)
            const [cid, size] = list.ref(i)
            if (size > MAX_BLOCK_SIZE) throw mismatch(cid, size, size) // the manifest check rules this out
            if (fill + size > batches[k].length) await flush()
            const view = batches[k].subarray(fill, fill + size)
            const got = await reader.readInto(cid, view, { signal })
            if (got !== size) throw mismatch(cid, got, size)
            verifyBlock(cid, view)
            added(cid, size)
          }
        } else {
          let i = 0
          for await (const bytes of orderedWindow(list.indices(), window, fetchChunk)) {
            if (fill + bytes.length > batches[k].length) await flush()
            batches[k].set(bytes, fill) // fits: a block is at most MAX_BLOCK_SIZE = a batch's length
            added(list.ref(i++)[0], bytes.length)
          }
        }
        await flush()
        await writing
        if (written !== e.size) throw new SwarmpackError(CoreErrorCode.SIZE_MISMATCH, `${e.path}: wrote ${written} bytes, manifest says ${e.size}`, { details: { path: e.path } })
      } finally {
        await writing?.catch(() => {})
        await fh.close()
      }
      // Only 0o644 or 0o755 reach here (checked in the manifest): never setuid, setgid or sticky.
      await chmod(abs, e.mode & 0o755)
      onProgress?.(new CustomProgressEvent('swarmpack:unpack:file', { path: e.path, size: e.size }))
    }
    for (const e of manifest.entries) {
      throwIfAborted(signal)
      if (e.type === 'file') await writeFile(e)
    }
    for (const e of manifest.entries) {
      if (e.type !== 'symlink') continue
      const abs = join(staging, e.path)
      await mkdir(dirname(abs), { recursive: true, mode: 0o755 })
      await symlink(e.target, abs)
    }
    await chmod(staging, 0o755)
    throwIfAborted(signal)
    // rename() would silently replace an empty directory created meanwhile: check right before.
    if (await exists(targetDir)) throw new SwarmpackError(CoreErrorCode.TARGET_EXISTS, `${targetDir} appeared while unpacking`, { details: { path: targetDir } })
    await rename(staging, targetDir)
    // The result's chunk refs are built when first read: building all of them here (~480 bytes
    // a chunk, ~25 MiB for 1 GiB) on top of the write phase's not yet collected garbage was the
    // unpack's peak whenever V8's major GC came late.
    for (const [e, list] of lists) lazyChunks(e, list)
  } catch (err) {
    await rm(staging, { recursive: true, force: true })
    throw err
  }
  log('unpacked %s@%s (%d bytes) into %s', manifest.name, manifest.version, manifest.totalSize, targetDir)
  return { root, manifest, totalSize: manifest.totalSize, path: targetDir }
}
