/**
 * How blocks are named on disk. Like Kubo and the js-stores blockstores, the store is keyed by
 * multihash, not by the full CID: the same bytes under a raw and a dag-cbor CID are one file, and a
 * peer asking for either finds it. The file name is the CIDv1 raw form of the multihash in base32
 * (`bafkrei...`), so a listing is readable and parses back into a CID.
 *
 * Files are sharded by the two characters before the last one of that name (flatfs' `next-to-last/2`):
 * the leading characters of a base32 CID are always the same, the tail is uniformly random, which
 * gives 1024 evenly filled directories.
 */
import { CID } from 'multiformats/cid'
import { RAW_CODEC, SHA2_256_CODE } from '../block.js'

export const BLOCKS_DIR = 'blocks'

/** Store key (= file name) of a CID. */
export function blockKey (cid: CID): string {
  // a raw CIDv1 is its own key, and caches its string: no new CID per lookup on the hot paths
  if (cid.version === 1 && cid.code === RAW_CODEC) return cid.toString()
  return CID.createV1(RAW_CODEC, cid.multihash).toString()
}

export function shardOf (key: string): string {
  return key.slice(-3, -1)
}

/** Parses a file name back into its raw CID; undefined for anything that isn't a block name we write. */
export function keyToCid (name: string): CID | undefined {
  if (!name.startsWith('b') || name.length < 10) return undefined
  try {
    const cid = CID.parse(name)
    if (cid.version !== 1 || cid.code !== RAW_CODEC || cid.multihash.code !== SHA2_256_CODE) return undefined
    if (cid.toString() !== name) return undefined
    return cid
  } catch {
    return undefined
  }
}

/**
 * Exact shape of every key we write: CIDv1, raw, sha2-256 in base32 is `bafkrei` and 52 more
 * characters; the next one carries the last 2 (zero) bits of the multihash length byte, so it is
 * a-h; the last one ends in 2 padding bits, so its value is a multiple of 4.
 */
const KEY_SHAPE = /^bafkrei[a-h][a-z2-7]{50}[aeimquy4]$/

/**
 * Cheap test for a block file name, used by the open-time scan instead of parsing every name
 * (parsing costs more than the stat). Every name of this shape parses back canonically
 * (`keyToCid`); checked against random names in the tests.
 */
export function isBlockKey (name: string): boolean {
  return KEY_SHAPE.test(name)
}
