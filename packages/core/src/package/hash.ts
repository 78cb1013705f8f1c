/**
 * Turns a chunk into its raw block CID. The digest runs through WebCrypto, which hashes on
 * libuv's thread pool, so while one chunk is being hashed the main thread already looks for the
 * next boundary: chunking and hashing overlap on two cores.
 */
import { webcrypto } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { MAX_BLOCK_SIZE, RAW_CODEC, SHA2_256_CODE } from '../block.js'
import { CoreErrorCode, SwarmpackError } from '../errors.js'

export async function rawCidAsync (bytes: Uint8Array): Promise<CID> {
  if (bytes.byteLength > MAX_BLOCK_SIZE) {
    throw new SwarmpackError(CoreErrorCode.BLOCK_TOO_LARGE, `block of ${bytes.byteLength} bytes exceeds ${MAX_BLOCK_SIZE}`)
  }
  const digest = new Uint8Array(await webcrypto.subtle.digest('SHA-256', bytes))
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256_CODE, digest))
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
