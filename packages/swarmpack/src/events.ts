/**
 * Progress events of the node: one `onProgress` stream per operation, for the CLI's bars, its
 * `--json` output and logs. Fetcher events (`swarmpack:fetch:*`) are passed through as they come.
 */
import type { ProgressEvent } from 'progress-events'

export interface FetchedDetail {
  name: string
  version: string
  /** Bytes that came from the network / were already local. */
  bytes: { network: number, local: number, total: number }
  sources: Array<{ source: string, kind: string, blocks: number, bytes: number }>
  ms: number
}

export type NodeProgressEvents =
  ProgressEvent<'swarmpack:node:follow', { indexer: string, version: number, changed: boolean, source: string, error?: { code: string, message: string } }> |
  ProgressEvent<'swarmpack:node:resolve', { packages: number, ms: number }> |
  ProgressEvent<'swarmpack:node:plan', { add: number, remove: number, replace: number, unchanged: number, fetchBytes: number }> |
  ProgressEvent<'swarmpack:node:verify', { name: string, version: string, publisher: string, indexers: string[] }> |
  ProgressEvent<'swarmpack:node:fetch-start', { name: string, version: string, size: number }> |
  ProgressEvent<'swarmpack:node:fetched', FetchedDetail> |
  ProgressEvent<'swarmpack:node:unpack', { name: string, version: string, path: string, reused: boolean }> |
  ProgressEvent<'swarmpack:node:hook', { hook: 'load' | 'unload', name: string, version: string, reason: string, ok: boolean, ms: number, error?: string }> |
  ProgressEvent<'swarmpack:node:switch', { from?: number, to?: number }> |
  ProgressEvent<'swarmpack:node:step', { step: string, generation: number }> |
  ProgressEvent<string, any>
