/**
 * Signed envelopes. Every signed object is a dag-cbor map
 *   { payloadType, payload: <dag-cbor bytes of the object>, signer: <key id>, signature }
 * and the signature covers a pre-authentication encoding of the payload type and the payload
 * bytes exactly as received (in the manner of DSSE). The type is part of what is signed, so a
 * release signature can never be replayed as an index, a certificate or an attestation. One
 * envelope carries exactly one signature: thresholds count distinct identities across envelopes.
 */
import { DAG_CBOR_CODEC, encodeCborBlock } from '@swarmpack/core'
import { sha256 } from 'multiformats/hashes/sha2'
import { CID } from 'multiformats/cid'
import { concat } from 'uint8arrays/concat'
import { fromString } from 'uint8arrays/from-string'
import { decodeStrict, encodeCanonical } from './cbor.js'
import { TrustErrorCode, trustError } from './errors.js'
import { keyIdOf, publicKeyFromKeyId, sign, verifySignature, type Ed25519PrivateKey, type KeyId } from './keys.js'
import { asBytes, asObject, asString, expectKeys } from './schema.js'

export const PayloadType = {
  DELEGATION: 'swarmpack/delegation@1',
  RELEASE: 'swarmpack/release@1',
  INDEX: 'swarmpack/index@1',
  INDEX_HEAD: 'swarmpack/index-head@1',
  ATTESTATION: 'swarmpack/attestation@1',
  /** A new indexer key's co-signature of a hand-over to it (proof that someone holds it). */
  INDEXER_KEY: 'swarmpack/indexer-key@1'
} as const
export type PayloadType = typeof PayloadType[keyof typeof PayloadType]

/** Size caps per kind, checked before any decoding. Indexes are the only large signed object. */
export const MAX_ENVELOPE_BYTES: Record<PayloadType, number> = {
  [PayloadType.DELEGATION]: 16 * 1024,
  [PayloadType.RELEASE]: 512 * 1024,
  [PayloadType.INDEX]: 1024 * 1024,
  [PayloadType.INDEX_HEAD]: 8 * 1024,
  [PayloadType.ATTESTATION]: 8 * 1024,
  [PayloadType.INDEXER_KEY]: 1024
}

const PAE_PREFIX = 'SWARMPACK-ENVELOPE-V1'

/** The bytes a signature covers: prefix, type and payload, each length-prefixed so none can bleed into another. */
export function signedBytes (payloadType: string, payload: Uint8Array): Uint8Array {
  const typeBytes = fromString(payloadType)
  const head = fromString(`${PAE_PREFIX} ${typeBytes.byteLength} ${payloadType} ${payload.byteLength} `)
  return concat([head, payload])
}

export interface SignedObject {
  /** The envelope bytes, as signed and stored (a dag-cbor block). */
  bytes: Uint8Array
  /** CID of the envelope block. */
  cid: CID
}

export async function signEnvelope (key: Ed25519PrivateKey, payloadType: PayloadType, value: unknown): Promise<SignedObject> {
  const payload = encodeCanonical(value)
  const signature = await sign(key, signedBytes(payloadType, payload))
  const block = encodeCborBlock({ payloadType, payload, signer: keyIdOf(key), signature })
  return { bytes: block.bytes, cid: block.cid }
}

export interface OpenedEnvelope<T = unknown> {
  payloadType: PayloadType
  /** Decoded payload; the caller validates its shape. */
  value: T
  /** Payload bytes as received and signed. */
  payload: Uint8Array
  signer: KeyId
  /** CID of the envelope bytes (sha2-256, dag-cbor). */
  cid: CID
}

export interface OpenOptions {
  /** Override the per-kind size cap (never above the block limit). */
  maxBytes?: number
}

/**
 * Decodes and verifies an envelope of the expected kind: size cap, canonical dag-cbor, exact
 * fields, payload type, signature over the bytes as received, then the payload (canonical too).
 * Says nothing about whether the signer is trusted: that is the caller's policy.
 */
export function openEnvelope<T = unknown> (bytes: Uint8Array, expected: PayloadType, options: OpenOptions = {}): OpenedEnvelope<T> {
  const maxBytes = options.maxBytes ?? MAX_ENVELOPE_BYTES[expected]
  const what = `${expected} envelope`
  const env = asObject(decodeStrict(bytes, { maxBytes, what, maxDepth: 2 }), what)
  expectKeys(env, what, ['payloadType', 'payload', 'signer', 'signature'])
  const payloadType = asString(env.payloadType, `${what}.payloadType`, 64)
  if (payloadType !== expected) {
    throw trustError(TrustErrorCode.PAYLOAD_TYPE, `expected a ${expected} envelope, got ${payloadType}`, { expected, got: payloadType })
  }
  const payload = asBytes(env.payload, `${what}.payload`, maxBytes)
  const signer = asString(env.signer, `${what}.signer`, 80)
  publicKeyFromKeyId(signer) // malformed ids are MALFORMED, not BAD_SIGNATURE
  const signature = asBytes(env.signature, `${what}.signature`, 128)
  if (!verifySignature(signer, signedBytes(payloadType, payload), signature)) {
    throw trustError(TrustErrorCode.BAD_SIGNATURE, `${expected} signature by ${signer} does not verify`, { signer, payloadType })
  }
  const value = decodeStrict<T>(payload, { maxBytes, what: `${expected} payload` })
  const digest = sha256.digest(bytes)
  if (digest instanceof Promise) throw new Error('sha256 must be synchronous in Node')
  return { payloadType: expected, value, payload, signer, cid: CID.createV1(DAG_CBOR_CODEC, digest) }
}
