/**
 * Limits a manifest must stay within. Decoding checks them before anything else trusts the data,
 * so a hostile manifest cannot make a node allocate without bound, recurse deeply, or write
 * outside the target directory.
 */
export const MANIFEST_LIMITS = Object.freeze({
  /** Files, directories and symlinks in one package. */
  maxEntries: 1_000_000,
  /** UTF-8 bytes in a path, in one path segment, and segments in a path (directory depth). */
  maxPathBytes: 4096,
  maxSegmentBytes: 255,
  maxPathDepth: 64,
  /** UTF-8 bytes of a symlink target. */
  maxLinkTargetBytes: 4096,
  maxDescriptionLength: 16 * 1024,
  /** Categories and tags: count and length of each. */
  maxLabels: 64,
  maxLabelLength: 64,
  /** Dependencies and optional dependencies, each. */
  maxDependencies: 1024,
  /** Chunks of one file (8 Mi chunks, about 512 GiB at the default chunk size). */
  maxChunksPerFile: 8 * 1024 * 1024,
  /** Chunks of the whole package. */
  maxTotalChunks: 32 * 1024 * 1024,
  /** Pages of entries linked from the root, and chunk-list pages linked from one file. */
  maxPages: 16 * 1024,
  maxChunkPagesPerFile: 1024,
  /** Total package size (1 PiB), well inside Number.MAX_SAFE_INTEGER. */
  maxTotalSize: 2 ** 50,
  /** Total bytes of all manifest blocks (root and pages). */
  maxManifestBytes: 512 * 1024 * 1024,
  /** CBOR structure of any single manifest block. */
  maxCborDepth: 12,
  maxCborItemsPerBlock: 1_100_000
})

/** Chunks listed inline in a file entry; longer lists go into linked chunk-list blocks. */
export const INLINE_CHUNKS = 8192
/** Chunks per chunk-list block (about 770 KB encoded, under the 1 MiB block limit). */
export const CHUNKS_PER_PAGE = 16384
