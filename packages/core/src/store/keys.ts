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

/**
 * Store key (= file name) of a CID: the base32 string of its raw CIDv1, the same string as
 * `toString()` of that CID. Written here into a reused buffer rather than through `toString()`:
 * multiformats builds the string a character at a time, which leaves a V8 cons-string tree of
 * ~1.5 KiB per key (the index holds one per block, every put and read builds one) until something
 * flattens it; this is one flat 59-byte string.
 */
export function blockKey (cid: CID): string {
  // a raw CIDv1 is its own key: no new CID per lookup on the hot paths
  return base32Key(cid.version === 1 && cid.code === RAW_CODEC ? cid.bytes : CID.createV1(RAW_CODEC, cid.multihash).bytes)
}

const BASE32 = Buffer.from('abcdefghijklmnopqrstuvwxyz234567', 'latin1')
let keyBuf = Buffer.allocUnsafe(64)

/** 'b' and the RFC 4648 base32 (lower case, no padding) of `bytes`, as one flat string. */
function base32Key (bytes: Uint8Array): string {
  const n = 1 + Math.ceil(bytes.length * 8 / 5)
  if (keyBuf.length < n) keyBuf = Buffer.allocUnsafe(n)
  const out = keyBuf
  out[0] = 0x62 // 'b', the multibase prefix of base32
  let j = 1
  let bits = 0
  let buffer = 0
  for (let i = 0; i < bytes.length; i++) {
    buffer = ((buffer << 8) | bytes[i]) & 0xfff // at most 12 bits are ever pending
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out[j++] = BASE32[(buffer >> bits) & 31]
    }
  }
  if (bits > 0) out[j++] = BASE32[(buffer << (5 - bits)) & 31]
  return out.toString('latin1', 0, j)
}

/** A copy of `key` as one flat string (keys decoded by the index database cost twice that). */
export function flatKey (key: string): string {
  return Buffer.from(key, 'latin1').toString('latin1')
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
