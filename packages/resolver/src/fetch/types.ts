/** The fetcher's public types (the contract in /work/coord/FETCHER-CONTRACT.md, plus additions). */
import type { CID } from 'multiformats/cid'
import type { Provider } from '@swarmpack/core'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

/** peer = the swarm (DhtProvider); mirror = an HTTP mirror or gateway, or a directory. */
export type SourceKind = 'peer' | 'mirror'

/** Default `peers-first`: peers asked first, mirrors hedged in after a short wait. */
export type SourcePolicy = 'peers-first' | 'race' | 'peers-only' | 'mirrors-only'

export interface FetchSource {
  provider: Provider
  kind: SourceKind
  /** Lower first within a kind (default 0). */
  priority?: number
  /** Blocks asked of this source at once (default 128 for peers, 16 for mirrors). */
  concurrency?: number
}

/** What the fetcher needs of a block store: FsBlockstore, or any interface-blockstore. */
export interface FetchBlockstore {
  has(cid: CID, options?: { signal?: AbortSignal }): boolean | Promise<boolean>
  put(cid: CID, bytes: Uint8Array, options?: { signal?: AbortSignal }): Promise<unknown>
  get(cid: CID, options?: { signal?: AbortSignal }): any
  getBytes?(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array>
}

export interface FetchTimeouts {
  /** Initial wait before a block outstanding at one source is also asked of another (ms, default 1000); adaptive after. */
  hedgeAfterMs?: number
  /** One request for one block gives up after this long (ms, default 15 s). */
  blockTimeoutMs?: number
  /** No verified block for this long fails the fetch (ms, default 30 s). */
  stallTimeoutMs?: number
  /** Extra time a source gets for its first block (provider lookup in the DHT), ms, default 15 s. */
  lookupTimeoutMs?: number
}

export interface FetcherInit extends FetchTimeouts {
  blockstore: FetchBlockstore
  sources: FetchSource[]
  policy?: SourcePolicy
  /**
   * Whether `blockstore.put` checks bytes against the CID itself (FsBlockstore does); then the
   * fetcher does not hash a second time. Default: true for FsBlockstore, false otherwise.
   */
  storeVerifies?: boolean
  /** Blocks in flight in one fetch across all sources (default 256). */
  maxInFlight?: number
}

export interface FetchOptions extends ProgressOptions<FetchProgressEvents>, FetchTimeouts {
  signal?: AbortSignal
  policy?: SourcePolicy
  /** For fetchBlocks/getBlock: the root these blocks belong to (a per-root session hint for the swarm). */
  root?: CID
}

export interface SourceShare {
  /** The fetch source (its provider's name). */
  source: string
  kind: SourceKind
  /** Who inside the source served the bytes: a peer id, a mirror URL (when the provider says). */
  origin?: string
  blocks: number
  bytes: number
}

export interface BanRecord {
  source: string
  cid: string
  reason: string
  /** A peer id when the swarm banned one of its peers (the source itself stays usable). */
  peer?: string
}

export interface FetchResult {
  root?: CID
  blocks: { network: number, local: number, total: number }
  bytes: { network: number, local: number, total: number }
  sources: SourceShare[]
  banned: BanRecord[]
  hedges: number
  /** Hedges where the second source answered first. */
  hedgeWins: number
  /** Blocks that a source lacked or failed and another source supplied. */
  fallbacks: number
  ms: number
}

export interface FetchStartDetail {
  root?: CID
  /** Known once the manifest (all its blocks) is in: manifest blocks plus chunk references. */
  totalBlocks?: number
  totalBytes?: number
  /** Manifest (structure) blocks included in the totals. */
  structureBlocks?: number
}

export interface FetchBlockDetail {
  cid: CID
  bytes: number
  /** Fetch source name, or `local`. */
  source: string
  kind?: SourceKind
  /** Peer id or mirror URL inside the source, when known. */
  origin?: string
  local: boolean
  /** True for a block that arrived from a hedge (the second source asked). */
  hedged?: boolean
  ms?: number
}

export interface FetchHedgeDetail { cid: CID, from: string, to: string, afterMs: number }
export interface FetchMissDetail { cid: CID, source: string, reason: string }
export interface FetchSwitchDetail { source: string, state: 'demoted' | 'restored' | 'banned', reason: string }

export type FetchProgressEvents =
  ProgressEvent<'swarmpack:fetch:start', FetchStartDetail> |
  ProgressEvent<'swarmpack:fetch:block', FetchBlockDetail> |
  ProgressEvent<'swarmpack:fetch:miss', FetchMissDetail> |
  ProgressEvent<'swarmpack:fetch:hedge', FetchHedgeDetail> |
  ProgressEvent<'swarmpack:fetch:ban', BanRecord> |
  ProgressEvent<'swarmpack:fetch:source-switch', FetchSwitchDetail> |
  ProgressEvent<'swarmpack:fetch:done', FetchResult>

export interface Fetcher {
  fetchDag(root: CID, options?: FetchOptions): Promise<FetchResult>
  fetchBlocks(cids: Iterable<CID> | AsyncIterable<CID>, options?: FetchOptions): Promise<FetchResult>
  getBlock(cid: CID, options?: FetchOptions): Promise<Uint8Array>
  addSource(source: FetchSource): void
  removeSource(name: string): void
  readonly sources: readonly FetchSource[]
}
