/**
 * Size limits, in a module of their own with no imports, so that pack's chunk worker (which
 * loads the chunker) starts without loading the codecs behind block.ts.
 */

/** No block is larger than 1 MiB, so any IPFS tool can carry ours. */
export const MAX_BLOCK_SIZE = 1024 * 1024
