/**
 * Makes a block store look like a core `Provider`, so `unpack`, the resolver and the network code
 * can read from the local cache the same way they read from a mirror or the swarm.
 */
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent } from 'progress-events'
import { CoreErrorCode, SwarmpackError, isSwarmpackError, throwIfAborted } from '../errors.js'
import type { ProvidedBlock, Provider, ProviderGetOptions } from '../provider.js'
import { BlockNotFoundError } from './errors.js'

/** A store with a whole-block read (FsBlockstore) or any interface-blockstore implementation. */
export type BlockSource = Blockstore | (Pick<Blockstore, 'has'> & { getBytes(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array> })

/** Reads a whole block from any BlockSource; a miss is always ERR_NOT_FOUND. */
export async function readBlock (store: BlockSource, cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
  throwIfAborted(options.signal)
  try {
    if ('getBytes' in store && typeof store.getBytes === 'function') return await store.getBytes(cid, options)
    const chunks: Uint8Array[] = []
    for await (const chunk of (store as Blockstore).get(cid, options)) chunks.push(chunk)
    if (chunks.length === 1) return chunks[0]
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
    let off = 0
    for (const c of chunks) { out.set(c, off); off += c.byteLength }
    return out
  } catch (err) {
    if (isSwarmpackError(err)) throw err
    if ((err as Error)?.name === 'NotFoundError') throw new BlockNotFoundError(cid.toString(), 'block store')
    if ((err as Error)?.name === 'AbortError') throw new SwarmpackError(CoreErrorCode.ABORTED, 'the operation was aborted', { cause: err })
    throw err
  }
}

/**
 * A source that reads a block into the caller's buffer (`FsBlockstore.readInto`): returns the
 * block's size, and reads nothing when that is larger than `target`. `unpack` uses it when its
 * source has it, so unpacking from the local store allocates no buffer per block.
 */
export interface BlockReader {
  readInto(cid: CID, target: Uint8Array, options?: { signal?: AbortSignal }): Promise<number>
}

function isReader (store: unknown): store is BlockReader {
  return typeof (store as Partial<BlockReader>).readInto === 'function'
}

export interface StoreProviderInit {
  /** Name for logs and progress; default `store`. */
  name?: string
}

/**
 * A Provider over a local store. Misses raise ERR_NOT_FOUND; `getMany` skips them. Over a store
 * with `readInto` (FsBlockstore) it is a BlockReader too.
 */
export function storeProvider (store: BlockSource, init: StoreProviderInit = {}): Provider & Partial<BlockReader> {
  const name = init.name ?? ('dir' in store && typeof store.dir === 'string' ? `store:${store.dir}` : 'store')
  const get = async (cid: CID, options: ProviderGetOptions = {}): Promise<Uint8Array> => {
    const bytes = await readBlock(store, cid, options)
    options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid, size: bytes.byteLength, source: name }))
    return bytes
  }
  const readInto = isReader(store)
    ? async (cid: CID, target: Uint8Array, options: ProviderGetOptions = {}): Promise<number> => {
      throwIfAborted(options.signal)
      const size = await store.readInto(cid, target, options)
      options.onProgress?.(new CustomProgressEvent('swarmpack:provider:block', { cid, size, source: name }))
      return size
    }
    : undefined
  return {
    name,
    get,
    ...(readInto === undefined ? {} : { readInto }),
    async has (cid: CID, options: ProviderGetOptions = {}): Promise<boolean> {
      throwIfAborted(options.signal)
      return await store.has(cid, options)
    },
    async * getMany (cids: Iterable<CID> | AsyncIterable<CID>, options: ProviderGetOptions = {}): AsyncIterable<ProvidedBlock> {
      for await (const cid of cids) {
        let bytes: Uint8Array
        try {
          bytes = await get(cid, options)
        } catch (err) {
          if (isSwarmpackError(err, CoreErrorCode.NOT_FOUND) || isSwarmpackError(err, CoreErrorCode.CORRUPT_BLOCK)) continue
          throw err
        }
        yield { cid, bytes, source: name }
      }
    }
  }
}
