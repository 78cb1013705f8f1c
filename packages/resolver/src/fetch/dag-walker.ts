/**
 * Reading a package DAG without knowing its schema: links come from dag-cbor blocks, and a link
 * written as `[CID, number]` (a manifest chunk reference) carries the linked block's size, which
 * gives progress totals before the chunks arrive. dag-cbor blocks are structure (walked); other
 * codecs are leaves (fetched, never decoded).
 */
import { DAG_CBOR_CODEC, MANIFEST_LIMITS, decodeCbor, scanCbor } from '@swarmpack/core'
import { CID } from 'multiformats/cid'
import type { BlockItem } from './scheduler.js'

/** Blocks are the same whatever their codec: key them by multihash, as the store does. */
export function multihashKey (cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64')
}

/** Nesting accepted in a structure block (manifests use far less; index shards a little more). */
const MAX_CBOR_DEPTH = 64

/** The links of one block, in order, with sizes where the block says. */
export function blockItems (cid: CID, bytes: Uint8Array): BlockItem[] {
  if (cid.code !== DAG_CBOR_CODEC) return []
  // the decoder recurses: refuse hostile nesting before it runs
  scanCbor(bytes, { maxDepth: MAX_CBOR_DEPTH, maxItems: MANIFEST_LIMITS.maxCborItemsPerBlock })
  const out: BlockItem[] = []
  const walk = (value: unknown): void => {
    if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return
    const link = CID.asCID(value)
    if (link !== null) { out.push({ cid: link }); return }
    if (Array.isArray(value)) {
      if (value.length === 2 && typeof value[1] === 'number' && Number.isSafeInteger(value[1]) && value[1] >= 0) {
        const ref = CID.asCID(value[0])
        if (ref !== null) { out.push({ cid: ref, size: value[1] }); return }
      }
      for (const v of value) walk(v)
      return
    }
    for (const v of Object.values(value)) walk(v)
  }
  walk(decodeCbor(bytes))
  return out
}

export function isStructure (cid: CID): boolean {
  return cid.code === DAG_CBOR_CODEC
}

/**
 * The leaves a DAG reaches, depth first, reading structure blocks through `read` (they are in the
 * store by then). Only structure keys are remembered, so memory follows the manifest's size, not
 * the package's; a leaf referenced twice is yielded twice (the scheduler finds it local).
 */
export async function * dagLeaves (root: CID, read: (cid: CID) => Promise<Uint8Array>): AsyncGenerator<BlockItem> {
  const seen = new Set<string>([multihashKey(root)])
  const stack: CID[] = [root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    const sub: CID[] = []
    for (const item of blockItems(cid, await read(cid))) {
      if (!isStructure(item.cid)) { yield item; continue }
      const key = multihashKey(item.cid)
      if (seen.has(key)) continue
      seen.add(key)
      sub.push(item.cid)
    }
    for (let i = sub.length - 1; i >= 0; i--) stack.push(sub[i])
  }
}
