/**
 * Messages between pack and its chunk worker (chunk-hasher.ts on the main thread, chunk-worker.ts
 * in the worker). No imports: the worker loads only this and the chunker.
 *
 * `workerData` is the ChunkerParams. Each request is the next piece of the current file (its
 * ArrayBuffer transferred), with `final` on the file's last piece. Each reply holds the bytes of
 * the chunks cut so far (the same memory, transferred back), their lengths in order, and their
 * CIDs' bytes (CID_BYTES each: the raw sha2-256 CIDv1 prefix, then the digest), so the main thread
 * builds each CID as a view, without encoding or copying.
 */
export interface ChunkRequest { bytes: Uint8Array, final: boolean }
export interface ChunkReply { bytes: Uint8Array, lengths: Uint32Array, cids: Uint8Array }

/** Bytes of a raw sha2-256 CIDv1. */
export const CID_BYTES = 36
/** Its first four: version 1, raw codec (0x55), sha2-256 (0x12), 32 digest bytes. */
export const CID_PREFIX: readonly number[] = [0x01, 0x55, 0x12, 0x20]
