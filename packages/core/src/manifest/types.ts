/** The manifest: the root of a package, describing its metadata and its file tree. */
import type { CID } from 'multiformats/cid'

/** What a publisher says about a package; `pack` takes this and adds the file tree. */
export interface PackageMetadata {
  /** Package name, see names.ts for the rule. */
  name: string
  /** Strict SemVer version. */
  version: string
  description?: string
  categories?: string[]
  tags?: string[]
  /** Dependency name -> npm semver range. */
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  /** Platform key such as `linux-x64`, `darwin-arm64`; `any` (the default) for portable packages. */
  platform?: string
  /** Optional build-variant key (compiler or feature flags), e.g. `musl`, `avx2`. */
  variant?: string
  /** Path of the entry point inside the package (must be a file of the tree). */
  entry?: string
}

/** A chunk of a file: the raw block's CID and its length in bytes. */
export type ChunkRef = [cid: CID, size: number]

export interface FileEntry {
  type: 'file'
  /** Relative POSIX path, e.g. `lib/index.js`. */
  path: string
  /** 0o644 or 0o755: only the executable bit is kept, never setuid/setgid/sticky. */
  mode: number
  size: number
  chunks: ChunkRef[]
}

export interface DirEntry {
  type: 'dir'
  path: string
  /** Always 0o755. */
  mode: number
}

export interface SymlinkEntry {
  type: 'symlink'
  path: string
  /** Relative target that stays inside the package root. */
  target: string
}

export type ManifestEntry = FileEntry | DirEntry | SymlinkEntry

/** A decoded (or to-be-encoded) manifest, with every optional metadata field filled in. */
export interface Manifest {
  name: string
  version: string
  description: string
  categories: string[]
  tags: string[]
  dependencies: Record<string, string>
  optionalDependencies: Record<string, string>
  platform: string
  variant?: string
  entry?: string
  /** Sum of all file sizes: known from the root block alone, before any download. */
  totalSize: number
  /** Sorted by path (byte order); parents come before their children. */
  entries: ManifestEntry[]
}

/** Identifies the format of each manifest block kind. */
export const MANIFEST_FORMAT = 'swarmpack/manifest@1'
export const MANIFEST_PAGE_FORMAT = 'swarmpack/manifest-page@1'
export const CHUNK_LIST_FORMAT = 'swarmpack/chunk-list@1'
