/**
 * The Provider contract: anything that can fetch a block by CID (a directory mirror, an HTTP
 * mirror, the libp2p swarm). Providers return bytes; callers verify them against the CID
 * (see `verifyBlock`) before storing or using them.
 */
import type { CID } from 'multiformats/cid'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

export interface ProviderBlockDetail {
  cid: CID
  /** Bytes of the block received. */
  size: number
  /** Human-readable origin: a mirror URL, a directory, a peer id. */
  source: string
}

/** Progress events emitted by providers, in the libp2p/Helia `onProgress` style. */
export type ProviderProgressEvents =
  ProgressEvent<'swarmpack:provider:block', ProviderBlockDetail> |
  ProgressEvent<'swarmpack:provider:retry', { cid: CID, source: string, error: Error }>

export interface ProviderGetOptions extends ProgressOptions<ProviderProgressEvents> {
  signal?: AbortSignal
  /**
   * The package (or index) root the block belongs to: a hint for providers that work per root
   * (the swarm looks up the root's providers once and asks them for all its blocks). Others ignore it.
   */
  root?: CID
}

export interface ProvidedBlock {
  cid: CID
  bytes: Uint8Array
  /** Where the bytes came from (for logs and progress). */
  source: string
}

export interface Provider {
  /** Short name for logs, e.g. `fs:/srv/mirror`, `http:https://mirror.example`, `dht`. */
  readonly name: string
  /** Fetches one block. Rejects with a SwarmpackError `ERR_NOT_FOUND` when the source lacks it. */
  get(cid: CID, options?: ProviderGetOptions): Promise<Uint8Array>
  /** Whether the source (probably) has the block, without fetching it. */
  has?(cid: CID, options?: ProviderGetOptions): Promise<boolean>
  /**
   * Fetches many blocks at once, yielding them as they arrive (in any order). Blocks the
   * source lacks are skipped; the caller notices what is missing.
   */
  getMany?(cids: Iterable<CID> | AsyncIterable<CID>, options?: ProviderGetOptions): AsyncIterable<ProvidedBlock>
  /** Releases sockets, timers, file handles. */
  close?(): Promise<void>
}
