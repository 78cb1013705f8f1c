/**
 * FsProvider: a core Provider reading a static mirror directory (layout.ts). Bytes are returned
 * unverified, as the Provider contract says (the caller verifies), but reading stops at
 * MAX_BLOCK_SIZE + 1 bytes, so a huge or hostile file under a block name cannot exhaust memory.
 */
import { open, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent } from 'progress-events'
import { IDENTITY_CODE, MAX_BLOCK_SIZE } from '../block.js'
import { CoreErrorCode, SwarmpackError, isSwarmpackError, throwIfAborted } from '../errors.js'
import type { ProvidedBlock, Provider, ProviderGetOptions } from '../provider.js'
import { BlockNotFoundError, StoreErrorCode, errnoOf, ioError } from '../store/errors.js'
import { MAX_INDEX_HEAD_SIZE, MIRROR_DESCRIPTOR, mirrorBlockPath, mirrorIndexHeadPath, parseMirrorDescriptor } from './layout.js'

const log = logger('swarmpack:fs-provider')

export interface FsProviderInit {
  /** Blocks fetched at once by `getMany`. Default 8. */
  concurrency?: number
}

export class FsProvider implements Provider {
  readonly name: string
  readonly dir: string
  readonly #concurrency: number

  /** A provider over `dir`, without checking it (see `FsProvider.open`). */
  constructor (dir: string, init: FsProviderInit = {}) {
    if (typeof dir !== 'string' || dir === '') throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, 'mirror directory must be a non-empty string')
    this.dir = resolve(dir)
    this.name = `fs:${this.dir}`
    this.#concurrency = Math.max(1, init.concurrency ?? 8)
  }

  /** Opens a mirror directory after checking its descriptor (ERR_MIRROR_INVALID otherwise). */
  static async open (dir: string, init: FsProviderInit = {}): Promise<FsProvider> {
    const provider = new FsProvider(dir, init)
    const path = join(provider.dir, MIRROR_DESCRIPTOR)
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      throw new SwarmpackError(StoreErrorCode.MIRROR_INVALID, `${dir} is not a swarmpack mirror (no readable ${MIRROR_DESCRIPTOR})`, { cause: err, details: { dir } })
    }
    if (parseMirrorDescriptor(text) === undefined) {
      throw new SwarmpackError(StoreErrorCode.MIRROR_INVALID, `${path} is not a mirror descriptor this version can read`, { details: { dir } })
    }
    return provider
  }

  async get (cid: CID, options: ProviderGetOptions = {}): Promise<Uint8Array> {
    throwIfAborted(options.signal)
    const bytes = cid.multihash.code === IDENTITY_CODE ? cid.multihash.digest : await this.#read(cid, options.signal)
    options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid, size: bytes.byteLength, source: this.name }))
    return bytes
  }

  async has (cid: CID, options: ProviderGetOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal)
    if (cid.multihash.code === IDENTITY_CODE) return true
    try {
      const fh = await open(join(this.dir, mirrorBlockPath(cid)), 'r')
      try { return (await fh.stat()).isFile() } finally { await fh.close() }
    } catch {
      return false
    }
  }

  /** Fetches many blocks, `concurrency` at a time, yielding them as they are read; missing ones are skipped. */
  async * getMany (cids: Iterable<CID> | AsyncIterable<CID>, options: ProviderGetOptions = {}): AsyncIterable<ProvidedBlock> {
    const iterator = (Symbol.asyncIterator in cids ? cids[Symbol.asyncIterator]() : (cids as Iterable<CID>)[Symbol.iterator]()) as AsyncIterator<CID> | Iterator<CID>
    const running = new Map<number, Promise<{ id: number, block?: ProvidedBlock, error?: unknown }>>()
    let nextId = 0
    let done = false
    const start = async (): Promise<void> => {
      if (done) return
      const step = await iterator.next()
      if (step.done === true) { done = true; return }
      const cid = step.value
      const id = nextId++
      running.set(id, this.get(cid, options).then(bytes => ({ id, block: { cid, bytes, source: this.name } }), error => ({ id, error })))
    }
    while (running.size < this.#concurrency && !done) await start()
    while (running.size > 0) {
      const { id, block, error } = await Promise.race(running.values())
      running.delete(id)
      if (error !== undefined) {
        if (isSwarmpackError(error, CoreErrorCode.ABORTED)) throw error
        log('skipping a block: %s', (error as Error).message)
      } else if (block !== undefined) {
        yield block
      }
      throwIfAborted(options.signal)
      while (running.size < this.#concurrency && !done) await start()
    }
  }

  /**
   * The head record the mirror holds for an indexer (`indexes/<id>/head`), bytes as signed and
   * unverified; ERR_NOT_FOUND when absent, ERR_BLOCK_TOO_LARGE above MAX_INDEX_HEAD_SIZE.
   */
  async getIndexHead (indexerId: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    throwIfAborted(options.signal)
    let rel: string
    try {
      rel = mirrorIndexHeadPath(indexerId)
    } catch (err) {
      throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `invalid indexer id ${JSON.stringify(String(indexerId).slice(0, 80))}`, { cause: err })
    }
    return await this.#readCapped(join(this.dir, ...rel.split('/')), MAX_INDEX_HEAD_SIZE, `index head of ${indexerId}`, options.signal)
  }

  async #read (cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
    return await this.#readCapped(join(this.dir, mirrorBlockPath(cid)), MAX_BLOCK_SIZE, cid.toString(), signal)
  }

  /** Reads a regular file of at most `max` bytes, never reading more than `max + 1`. */
  async #readCapped (path: string, max: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    let fh
    try {
      fh = await open(path, 'r')
    } catch (err) {
      const errno = errnoOf(err)
      if (errno === 'ENOENT' || errno === 'ENOTDIR' || errno === 'EISDIR') throw new BlockNotFoundError(what, this.name)
      throw ioError(`cannot open ${path}`, err)
    }
    try {
      const st = await fh.stat()
      if (!st.isFile()) throw new BlockNotFoundError(what, this.name)
      // read at most one byte past the cap: enough to know the file is too big, whatever stat said
      const cap = max + 1
      const buf = new Uint8Array(Math.min(cap, Math.max(st.size, 0) + 1))
      let length = 0
      for (;;) {
        throwIfAborted(signal)
        if (length === buf.byteLength) break
        const { bytesRead } = await fh.read(buf, length, buf.byteLength - length, length)
        if (bytesRead === 0) break
        length += bytesRead
      }
      if (length > max) {
        throw new SwarmpackError(CoreErrorCode.BLOCK_TOO_LARGE, `${this.name}: file for ${what} exceeds ${max} bytes`, {
          details: { what, max, source: this.name }
        })
      }
      return buf.subarray(0, length)
    } catch (err) {
      if (isSwarmpackError(err)) throw err
      if (errnoOf(err) === 'EISDIR') throw new BlockNotFoundError(what, this.name)
      throw ioError(`cannot read ${path}`, err)
    } finally {
      await fh.close()
    }
  }
}
