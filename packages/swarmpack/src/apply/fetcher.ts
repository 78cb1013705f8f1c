/**
 * The part of the resolver's fetcher (FETCHER-CONTRACT) the node uses. Declared here as an
 * interface so the apply code states exactly what it relies on.
 */
import type { CID } from 'multiformats/cid'

export interface NodeFetchResult {
  bytes: { network: number, local: number, total: number }
  sources: Array<{ source: string, kind: string, blocks: number, bytes: number }>
  ms: number
}

export interface NodeFetchOptions {
  signal?: AbortSignal
  /** For single blocks: the root they belong to (the swarm asks that root's providers). */
  root?: CID
  onProgress?: (evt: any) => void
}

export interface NodeFetcher {
  fetchDag: (root: CID, options?: NodeFetchOptions) => Promise<NodeFetchResult>
  getBlock: (cid: CID, options?: NodeFetchOptions) => Promise<Uint8Array>
}
