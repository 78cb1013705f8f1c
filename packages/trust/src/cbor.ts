/**
 * Strict dag-cbor decoding for signed objects that arrive from untrusted peers.
 * Order matters: the size cap is checked first, then a header-only scan bounds nesting depth
 * (the decoder recurses, so a deeply nested value could exhaust the stack), then the value is
 * decoded and re-encoded: bytes that do not re-encode identically are not canonical and are refused,
 * so one object never has two signed encodings.
 */
import * as dagCbor from '@ipld/dag-cbor'
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
 * Walks CBOR item headers without building values. Throws ERR_TRUST_MALFORMED on truncation,
 * indefinite lengths (dag-cbor forbids them), reserved header values, trailing bytes or nesting
 * deeper than `maxDepth`.
 */
export function scanCborDepth (bytes: Uint8Array, maxDepth: number, what: string): void {
  const len = bytes.byteLength
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const bad = (why: string): never => { throw trustError(TrustErrorCode.MALFORMED, `${what}: ${why}`, { what, offset: pos }) }
  let pos = 0
  // remaining items expected in each open container; the bottom entry is the single top-level item
  const stack: number[] = [1]
  while (stack.length > 0) {
    if (pos >= len) bad('truncated CBOR')
    const initial = bytes[pos++]
    const major = initial >> 5
    const info = initial & 31
    let value: number
    if (info < 24) {
      value = info
    } else if (info === 24) {
      if (pos + 1 > len) bad('truncated CBOR'); value = bytes[pos]; pos += 1
    } else if (info === 25) {
      if (pos + 2 > len) bad('truncated CBOR'); value = view.getUint16(pos); pos += 2
    } else if (info === 26) {
      if (pos + 4 > len) bad('truncated CBOR'); value = view.getUint32(pos); pos += 4
    } else if (info === 27) {
      if (pos + 8 > len) bad('truncated CBOR')
      const big = view.getBigUint64(pos); pos += 8
      // lengths this large can never fit in the input; integers this large are fine to skip
      value = big > BigInt(len) ? Number.MAX_SAFE_INTEGER : Number(big)
    } else {
      return bad(info === 31 ? 'indefinite-length CBOR is not allowed' : 'reserved CBOR header')
    }
    stack[stack.length - 1]--
    if (major === 2 || major === 3) {
      if (value > len - pos) bad('CBOR string runs past the end')
      pos += value
    } else if (major === 4 || major === 5) {
      const items = major === 5 ? value * 2 : value
      if (items > len - pos) bad('CBOR container claims more items than bytes')
      if (items > 0) {
        if (stack.length > maxDepth) bad(`CBOR nested deeper than ${maxDepth}`)
        stack.push(items)
      }
    } else if (major === 6) {
      stack[stack.length - 1]++ // a tag wraps exactly one following item
    }
    while (stack.length > 0 && stack[stack.length - 1] === 0) stack.pop()
  }
  if (pos !== len) bad('trailing bytes after CBOR value')
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
