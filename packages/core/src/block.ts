/**
 * Blocks: bytes addressed by a CIDv1 with a sha2-256 multihash. File chunks use the raw codec,
 * structured objects (manifests, releases, indexes, certificates) use dag-cbor.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'uint8arrays/equals'
import { CoreErrorCode, SwarmpackError } from './errors.js'

export { CID }

export const RAW_CODEC = raw.code
export const DAG_CBOR_CODEC = dagCbor.code
export const SHA2_256_CODE = sha256.code
export const IDENTITY_CODE = identity.code

/** No block is larger than 1 MiB, so any IPFS tool can carry ours. */
export const MAX_BLOCK_SIZE = 1024 * 1024

export interface Block {
  cid: CID
  bytes: Uint8Array
}

/** sha2-256 multihash; multiformats hashes synchronously in Node (node:crypto). */
function sha256Digest (bytes: Uint8Array): ReturnType<typeof sha256.digest> extends Promise<infer D> | infer D ? Exclude<D, Promise<unknown>> : never {
  const digest = sha256.digest(bytes)
  if (digest instanceof Promise) throw new Error('sha256 must be synchronous in Node')
  return digest as never
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
  return CID.createV1(RAW_CODEC, sha256Digest(bytes))
}

/** Encodes a value as deterministic dag-cbor and returns the block. */
export function encodeCborBlock (value: unknown): Block {
  const bytes = dagCbor.encode(value)
  checkSize(bytes)
  return { cid: CID.createV1(DAG_CBOR_CODEC, sha256Digest(bytes)), bytes }
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
 * Checks that `bytes` is the block addressed by `cid`: size cap, then the hash. Throws
 * ERR_BLOCK_MISMATCH otherwise. Call this on every block that arrives, before storing or passing it on.
 */
export function verifyBlock (cid: CID, bytes: Uint8Array): void {
  assertSupportedCid(cid)
  checkSize(bytes)
  let ok: boolean
  if (cid.multihash.code === IDENTITY_CODE) {
    ok = equals(cid.multihash.digest, bytes)
  } else {
    ok = equals(sha256Digest(bytes).digest, cid.multihash.digest)
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
