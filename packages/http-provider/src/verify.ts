/**
 * Block verification on the hot path. For the CIDs swarmpack writes (CIDv1, raw or dag-cbor,
 * sha2-256) the digest is computed with one node:crypto call and compared in place, without the
 * multiformats Digest objects core's verifyBlock builds. Anything else, and any mismatch, goes to
 * core's verifyBlock, which applies the full rules and throws the canonical typed error.
 * Hashing through core's `sha256Of` (or core's SHA-256 worker, which passes its `digest`) lets the
 * block store trust this hash instead of hashing again.
 */
import { DAG_CBOR_CODEC, MAX_BLOCK_SIZE, RAW_CODEC, SHA2_256_CODE, sha256Of, verifyBlock } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'
import { equals } from 'uint8arrays/equals'

/**
 * Throws unless `bytes` is the block `cid` names (same errors as core's verifyBlock). `digest`: the
 * SHA-256 of these very bytes from core's SHA-256 worker (also in core's memo), so not computed again.
 */
export function verifyBlockFast (cid: CID, bytes: Uint8Array, digest?: Uint8Array): void {
  const mh = cid.multihash
  if (mh.code === SHA2_256_CODE && cid.version === 1 && (cid.code === RAW_CODEC || cid.code === DAG_CBOR_CODEC) &&
    bytes.byteLength <= MAX_BLOCK_SIZE && mh.digest.byteLength === 32 && equals(digest ?? sha256Of(bytes), mh.digest)) return
  verifyBlock(cid, bytes)
}
