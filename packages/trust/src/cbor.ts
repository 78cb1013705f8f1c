/**
 * Strict dag-cbor decoding for signed objects that arrive from untrusted peers.
 * Order matters: the size cap is checked first, then a header-only scan bounds nesting depth
 * (the decoder recurses, so a deeply nested value could exhaust the stack), then the value is
 * decoded and re-encoded: bytes that do not re-encode identically are not canonical and are refused,
 * so one object never has two signed encodings.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { scanCbor } from '@swarmpack/core'
import { TrustErrorCode, trustError } from './errors.js'

/** Deepest nesting (arrays, maps) any trust object may use. */
export const MAX_CBOR_DEPTH = 16

export interface StrictDecodeOptions {
  /** Largest accepted input, checked before anything is parsed. */
  maxBytes: number
  /** Deepest accepted nesting; defaults to MAX_CBOR_DEPTH. */
  maxDepth?: number
  /** What is being decoded, for error messages. */
  what: string
}

/**
 * Walks CBOR item headers without building values (core's scanCbor). Throws ERR_TRUST_MALFORMED on
 * truncation, indefinite lengths (dag-cbor forbids them), reserved header values, trailing bytes or
 * nesting deeper than `maxDepth`.
 */
export function scanCborDepth (bytes: Uint8Array, maxDepth: number, what: string): void {
  scanCbor(bytes, { maxDepth, error: (why, offset) => trustError(TrustErrorCode.MALFORMED, `${what}: ${why}`, { what, offset }) })
}

/** Decodes untrusted dag-cbor with size, depth and canonical-form checks. */
export function decodeStrict<T = unknown> (bytes: Uint8Array, options: StrictDecodeOptions): T {
  const { maxBytes, what } = options
  if (!(bytes instanceof Uint8Array)) throw trustError(TrustErrorCode.MALFORMED, `${what}: expected bytes`, { what })
  if (bytes.byteLength > maxBytes) {
    throw trustError(TrustErrorCode.MALFORMED, `${what}: ${bytes.byteLength} bytes exceeds the cap of ${maxBytes}`, { what, size: bytes.byteLength, max: maxBytes })
  }
  scanCborDepth(bytes, options.maxDepth ?? MAX_CBOR_DEPTH, what)
  let value: T
  try {
    value = dagCbor.decode<T>(bytes)
  } catch (err) {
    throw trustError(TrustErrorCode.MALFORMED, `${what}: not valid dag-cbor`, { what }, err)
  }
  let again: Uint8Array
  try {
    again = dagCbor.encode(value)
  } catch (err) {
    throw trustError(TrustErrorCode.MALFORMED, `${what}: value cannot be re-encoded`, { what }, err)
  }
  if (Buffer.compare(again, bytes) !== 0) throw trustError(TrustErrorCode.MALFORMED, `${what}: not canonical dag-cbor`, { what })
  return value
}

/** Deterministic dag-cbor bytes of a value. */
export function encodeCanonical (value: unknown): Uint8Array {
  return dagCbor.encode(value)
}
