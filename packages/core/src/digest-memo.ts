/**
 * Hash once: the sha2-256 digest core last computed for each Uint8Array object (weakly held).
 * verifyBlock, and so FsBlockstore.put, compare against it instead of hashing the same bytes
 * again; a block received from the network is hashed by the receive path and trusted by the store
 * on that one hash. Only core's own hashing fills it (`sha256Of` in block.ts, and pack's chunk
 * worker through `rememberSha256`), so nothing can be marked verified without having been hashed.
 * Contract: bytes are not modified after they were hashed (a buffer that is refilled must be
 * hashed again with `sha256Of`, which always computes and records anew).
 *
 * Internal: not exported from the package, so no caller outside core can vouch for bytes.
 */
const hashed = new WeakMap<Uint8Array, Uint8Array>()

/**
 * Records `digest` as the sha2-256 of `bytes`. Only for digests core itself computed over this
 * very memory: `sha256Of`, or pack's chunk worker, which hashed the chunk in its thread and then
 * transferred (moved, not copied) the buffer holding it here, so no other code could write to it
 * in between.
 */
export function rememberSha256 (bytes: Uint8Array, digest: Uint8Array): void {
  hashed.set(bytes, digest)
}

/** The digest recorded for this very Uint8Array, if any. */
export function rememberedSha256 (bytes: Uint8Array): Uint8Array | undefined {
  return hashed.get(bytes)
}
