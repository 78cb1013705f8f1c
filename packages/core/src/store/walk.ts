/**
 * Walks a DAG from its roots without knowing its schema (links come from `blockLinks`: raw blocks
 * have none, dag-cbor links are followed), visiting each block once.
 */
import type { CID } from 'multiformats/cid'
import { blockLinks } from '../block.js'
import { throwIfAborted } from '../errors.js'
import { blockKey } from './keys.js'

export interface WalkedBlock {
  cid: CID
  bytes: Uint8Array
}

/**
 * Yields every block reachable from `roots`, depth first, reading each through `read` (which
 * should throw ERR_NOT_FOUND for a missing block; the walk lets that through). The visited set
 * holds multihash keys only, so memory stays small for large DAGs.
 */
export async function * walkDag (roots: CID[], read: (cid: CID) => Promise<Uint8Array>, options: { signal?: AbortSignal } = {}): AsyncGenerator<WalkedBlock> {
  const seen = new Set<string>()
  const stack: CID[] = []
  for (const root of [...roots].reverse()) {
    const key = blockKey(root)
    if (seen.has(key)) continue
    seen.add(key)
    stack.push(root)
  }
  while (stack.length > 0) {
    throwIfAborted(options.signal)
    const cid = stack.pop() as CID
    const bytes = await read(cid)
    yield { cid, bytes }
    const links = blockLinks(cid, bytes)
    for (let i = links.length - 1; i >= 0; i--) {
      const key = blockKey(links[i])
      if (seen.has(key)) continue
      seen.add(key)
      stack.push(links[i])
    }
  }
}
