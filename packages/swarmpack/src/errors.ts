/**
 * The node's error codes. Every failure is a `SwarmpackError` (from @swarmpack/core) whose `code`
 * never changes between releases; errors from the layers below (trust, resolver, fetcher, core)
 * keep their own codes and are attached as `cause` or listed in `details`.
 */
import { SwarmpackError } from '@swarmpack/core'

export const SwarmpackNodeErrorCode = {
  /** The deployment config is not valid JSON or breaks the schema; `details.issues` names each path. */
  CONFIG_INVALID: 'ERR_CONFIG_INVALID',
  /** No set of versions satisfies the wanted modules; `details.explanation` says why. */
  UNRESOLVABLE: 'ERR_UNRESOLVABLE',
  /** A wanted package has no variant for this host; `details.variants` lists those that exist. */
  NO_VARIANT: 'ERR_NO_VARIANT',
  /** The trust policy refuses a release (no chain, revoked, threshold not met ...); `details.trustCode` is trust's code. */
  TRUST_REFUSED: 'ERR_TRUST_REFUSED',
  /** An apply (or rollback) failed and was undone; `details.errors` lists every error that happened. */
  APPLY_FAILED: 'ERR_APPLY_FAILED',
  /** `frozen`: the lockfile was written for another deployment config. */
  LOCK_STALE: 'ERR_LOCK_STALE',
  /** The lockfile is missing, not JSON, or breaks its format. */
  LOCK_INVALID: 'ERR_LOCK_INVALID',
  /** A followed indexer has no accepted head: none of its head sources answered with a valid one. */
  INDEX_UNAVAILABLE: 'ERR_INDEX_UNAVAILABLE',
  /** The generation asked for does not exist (or was collected). */
  GENERATION_NOT_FOUND: 'ERR_GENERATION_NOT_FOUND',
  /** A host hook threw. */
  HOOK_FAILED: 'ERR_HOOK_FAILED',
  /** A host hook did not finish within its bound. */
  HOOK_TIMEOUT: 'ERR_HOOK_TIMEOUT',
  /** The node was stopped. */
  STOPPED: 'ERR_NODE_STOPPED',
  /** An argument is not valid (unknown package name, bad option). */
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  /** No indexer card (`swarmpack-indexer.json`) at the mirror named. */
  CARD_NOT_FOUND: 'ERR_CARD_NOT_FOUND',
  /** No signing key of that name in the data dir's key store. */
  KEY_NOT_FOUND: 'ERR_KEY_NOT_FOUND',
  /** The data dir is damaged (unreadable generation manifest, journal). */
  DATA_DIR_CORRUPT: 'ERR_DATA_DIR_CORRUPT'
} as const

export type SwarmpackNodeErrorCode = typeof SwarmpackNodeErrorCode[keyof typeof SwarmpackNodeErrorCode]

export function nodeError (code: SwarmpackNodeErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): SwarmpackError {
  return new SwarmpackError(code, message, { details, ...(cause !== undefined ? { cause } : {}) })
}
