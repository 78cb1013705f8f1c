/**
 * Blocks: bytes addressed by a CIDv1 with a sha2-256 multihash. File chunks use the raw codec,
 * structured objects (manifests, releases, indexes, certificates) use dag-cbor.
 */
import * as crypto from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import type { MultihashDigest } from 'multiformats/hashes/interface'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'uint8arrays/equals'
import { rememberSha256, rememberedSha256 } from './digest-memo.js'
import { CoreErrorCode, SwarmpackError } from './errors.js'
import { MAX_BLOCK_SIZE } from './limits.js'

export { CID }

export const RAW_CODEC = raw.code
export const DAG_CBOR_CODEC = dagCbor.code
export const SHA2_256_CODE = sha256.code
export const IDENTITY_CODE = identity.code

export { MAX_BLOCK_SIZE }

export interface Block {
  cid: CID
  bytes: Uint8Array
}

/** One-shot sha2-256 (crypto.hash exists from Node 20.12; createHash before that). */
const sha256Buffer: (bytes: Uint8Array) => Buffer = typeof crypto.hash === 'function'
  ? bytes => crypto.hash('sha256', bytes, 'buffer')
  : bytes => crypto.createHash('sha256').update(bytes).digest()

/** As a plain Uint8Array, so CIDs compare equal (deepStrictEqual) to those multiformats builds. */
function sha256Bytes (bytes: Uint8Array): Uint8Array {
  const buf = sha256Buffer(bytes)
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
}

/**
 * sha2-256 of `bytes`, always computed, and remembered for verifyBlock / the store (hash once:
 * see digest-memo.ts).
 */
export function sha256Of (bytes: Uint8Array): Uint8Array {
  const digest = sha256Bytes(bytes)
  rememberSha256(bytes, digest)
  return digest
}

/** The digest core already computed for this very Uint8Array, else a fresh one. */
function knownSha256 (bytes: Uint8Array): Uint8Array {
  return rememberedSha256(bytes) ?? sha256Of(bytes)
}

/** sha2-256 multihash of `bytes` (computed, and remembered for verifyBlock). */
export function sha256Multihash (bytes: Uint8Array): MultihashDigest<typeof SHA2_256_CODE> {
  return Digest.create(SHA2_256_CODE, sha256Of(bytes))
}

function checkSize (bytes: Uint8Array): void {
  if (bytes.byteLength > MAX_BLOCK_SIZE) {
    throw new SwarmpackError(CoreErrorCode.BLOCK_TOO_LARGE, `block of ${bytes.byteLength} bytes exceeds ${MAX_BLOCK_SIZE}`, {
      details: { size: bytes.byteLength, max: MAX_BLOCK_SIZE }
    })
  }
}

/** CID of a raw block (a file chunk). */
export function rawCid (bytes: Uint8Array): CID {
  checkSize(bytes)
  return CID.createV1(RAW_CODEC, sha256Multihash(bytes))
}

/** Encodes a value as deterministic dag-cbor and returns the block. */
export function encodeCborBlock (value: unknown): Block {
  const bytes = dagCbor.encode(value)
  checkSize(bytes)
  return { cid: CID.createV1(DAG_CBOR_CODEC, sha256Multihash(bytes)), bytes }
}

/** Decodes dag-cbor bytes. Callers validate the shape before trusting it. */
export function decodeCbor<T = unknown> (bytes: Uint8Array): T {
  return dagCbor.decode<T>(bytes)
}

/** Accepts only what swarmpack stores: CIDv1, raw or dag-cbor, sha2-256 (or identity for tiny inline blocks). */
export function assertSupportedCid (cid: CID): void {
  if (cid.version !== 1 || (cid.code !== RAW_CODEC && cid.code !== DAG_CBOR_CODEC) ||
    (cid.multihash.code !== SHA2_256_CODE && cid.multihash.code !== IDENTITY_CODE)) {
    throw new SwarmpackError(CoreErrorCode.UNSUPPORTED_CID, `unsupported CID ${cid.toString()}`, { details: { cid: cid.toString() } })
  }
}

/**
 * Checks that `bytes` is the block addressed by `cid`: size cap, then the hash (reusing the digest
 * core computed for these very bytes, if any: see `sha256Of`). Throws
 * ERR_BLOCK_MISMATCH otherwise. Call this on every block that arrives, before storing or passing it on.
 */
export function verifyBlock (cid: CID, bytes: Uint8Array): void {
  assertSupportedCid(cid)
  checkSize(bytes)
  let ok: boolean
  if (cid.multihash.code === IDENTITY_CODE) {
    ok = equals(cid.multihash.digest, bytes)
  } else {
    ok = equals(knownSha256(bytes), cid.multihash.digest)
  }
  if (!ok) {
    throw new SwarmpackError(CoreErrorCode.BLOCK_MISMATCH, `block does not match ${cid.toString()}`, { details: { cid: cid.toString() } })
  }
}

/** Parses a CID string, raising ERR_INVALID_ARGUMENT rather than a bare Error. */
export function parseCid (text: string): CID {
  try {
    return CID.parse(text)
  } catch (err) {
    throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `not a CID: ${JSON.stringify(text.slice(0, 100))}`, { cause: err })
  }
}

/**
 * The CIDs a block links to: none for raw blocks, every CID inside a dag-cbor value otherwise.
 * Lets the store pin and walk any package DAG without knowing the manifest schema.
 */
export function blockLinks (cid: CID, bytes: Uint8Array): CID[] {
  if (cid.code !== DAG_CBOR_CODEC) return []
  const out: CID[] = []
  const seen = new Set<unknown>()
  const walk = (value: unknown, depth: number): void => {
    if (depth > 64 || value === null || typeof value !== 'object' || seen.has(value)) return
    const asCid = CID.asCID(value)
    if (asCid !== null) { out.push(asCid); return }
    if (value instanceof Uint8Array) return
    seen.add(value)
    for (const v of Array.isArray(value) ? value : Object.values(value)) walk(v, depth + 1)
  }
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    // bytes can hash to a dag-cbor CID without being dag-cbor (a peer or mirror made them so)
    throw new SwarmpackError(CoreErrorCode.INVALID_MANIFEST, `block ${cid.toString()} is not valid dag-cbor: ${(err as Error).message}`, { cause: err })
  }
  walk(value, 0)
  return out
}
