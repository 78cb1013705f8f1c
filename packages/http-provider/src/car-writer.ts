/**
 * Writing CARv1 streams: the header and block sections, encoded on the fly so a whole DAG never
 * sits in memory. The walker yields a DAG's blocks depth-first (the order gateways use for
 * `order=dfs`), each block once.
 */
import { blockLinks, encodeCborBlock, IDENTITY_CODE } from '@swarmpack/core'
import type { Blockstore } from 'interface-blockstore'
import { varint } from 'multiformats'
import type { CID } from 'multiformats/cid'

export function carHeader (roots: CID[]): Uint8Array {
  const body = encodeCborBlock({ version: 1, roots }).bytes
  const out = new Uint8Array(varint.encodingLength(body.byteLength) + body.byteLength)
  varint.encodeTo(body.byteLength, out, 0)
  out.set(body, varint.encodingLength(body.byteLength))
  return out
}

/** The bytes that precede a block in a CAR section: the section length and the CID. */
export function carSectionPrefix (cid: CID, blockLength: number): Uint8Array {
  const cidBytes = cid.bytes
  const length = cidBytes.byteLength + blockLength
  const lenBytes = varint.encodingLength(length)
  const out = new Uint8Array(lenBytes + cidBytes.byteLength)
  varint.encodeTo(length, out, 0)
  out.set(cidBytes, lenBytes)
  return out
}

/** Reads one block from an interface-blockstore v7 store (which yields the bytes in chunks). */
export async function readBlock (store: Blockstore, cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
  if (cid.multihash.code === IDENTITY_CODE) return cid.multihash.digest
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of store.get(cid, { signal })) { chunks.push(chunk); total += chunk.byteLength }
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(total)
  let offset = 0
  for (const c of chunks) { out.set(c, offset); offset += c.byteLength }
  return out
}

/**
 * Yields the blocks of the DAG under `root`, depth-first, each once. With `scope: 'block'` only
 * the root. Memory: the set of CIDs already sent plus the stack of links still to visit.
 */
export async function * walkDag (store: Blockstore, root: CID, scope: 'block' | 'all', signal?: AbortSignal): AsyncGenerator<{ cid: CID, bytes: Uint8Array }> {
  const seen = new Set<string>()
  const stack: CID[] = [root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    const key = cid.toString()
    if (seen.has(key)) continue
    seen.add(key)
    const bytes = await readBlock(store, cid, signal)
    yield { cid, bytes }
    if (scope === 'all') {
      const links = blockLinks(cid, bytes)
      for (let i = links.length - 1; i >= 0; i--) if (!seen.has(links[i].toString())) stack.push(links[i])
    }
  }
}
