/**
 * Messages between the SHA-256 worker and its user (sha256-worker.ts, which also holds the
 * worker's program).
 *
 * Each request is a batch: one buffer (its ArrayBuffer transferred) and `ranges`, pairs of
 * (offset, length) into it. The reply, in request order, gives the same memory back (transferred)
 * with the ranges and the 32-byte digest of each range, in order, in one buffer.
 */
export interface HashRequest { bytes: Uint8Array, ranges: Uint32Array }
export interface HashReply { bytes: Uint8Array, ranges: Uint32Array, digests: Uint8Array }

export const SHA256_BYTES = 32
