/**
 * Error codes of the publishing side of the node: index heads, publish/indexer/attest and the
 * catalog. Trust failures keep trust's own codes (ERR_TRUST_*); these cover the rest. Codes never change.
 */
import { SwarmpackError } from '@swarmpack/core'

export const PublishErrorCode = {
  /** No source had a head for the indexer (every source missed or failed); `details.sources` lists each. */
  HEAD_NOT_FOUND: 'ERR_HEAD_NOT_FOUND',
  /** A head source gave no answer within its bound (reported per source in `details.sources`). */
  HEAD_TIMEOUT: 'ERR_HEAD_TIMEOUT',
  /** A head source is misconfigured (bad URL, unknown kind). */
  HEAD_SOURCE: 'ERR_HEAD_SOURCE',
  /** publish/indexer/attest input is invalid (metadata, key, certificates, variants). */
  PUBLISH_INVALID: 'ERR_PUBLISH_INVALID',
  /** The release conflicts with what the index already lists (same name@version, other release). */
  INDEX_CONFLICT: 'ERR_INDEX_CONFLICT',
  /** The indexer's persisted state is unreadable or belongs to another key or indexer. */
  INDEXER_STATE: 'ERR_INDEXER_STATE',
  /** The indexer was used after close(). */
  INDEXER_CLOSED: 'ERR_INDEXER_CLOSED',
  /** The catalog has no such package (name unknown to every followed index). */
  CATALOG_NOT_FOUND: 'ERR_CATALOG_NOT_FOUND',
  /** A search query is invalid (empty, too long, bad limit). */
  CATALOG_QUERY: 'ERR_CATALOG_QUERY'
} as const

export type PublishErrorCode = typeof PublishErrorCode[keyof typeof PublishErrorCode]

export function publishError (code: PublishErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): SwarmpackError {
  return new SwarmpackError(code, message, { details, ...(cause === undefined ? {} : { cause }) })
}
