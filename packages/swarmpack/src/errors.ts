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
  DATA_DIR_CORRUPT: 'ERR_DATA_DIR_CORRUPT',

  // ---- operations (src/ops): updates, scrub, diagnostics, cache, network
  /** An automatic update failed (check or apply); `details.cause` is the underlying error. The watcher tries again next interval. */
  UPDATE_FAILED: 'ERR_UPDATE_FAILED',
  /** The host's `approveUpdate` hook said no (or threw, or timed out); nothing was changed. */
  UPDATE_VETOED: 'ERR_UPDATE_VETOED',
  /** A scrub could not run to the end (store unreadable, node stopped); partial findings in `details.report`. */
  SCRUB_FAILED: 'ERR_SCRUB_FAILED',
  /** A stored block failed its hash check (scrub, doctor's sample); it was removed and fetched again when possible. */
  BLOCK_CORRUPT: 'ERR_BLOCK_CORRUPT',
  /** A pinned block is in no source any more (scrub could not fetch it again). */
  BLOCK_UNRECOVERABLE: 'ERR_BLOCK_UNRECOVERABLE',
  /** An installed file differs from its manifest (modified, deleted, wrong mode or type). */
  FILE_MODIFIED: 'ERR_FILE_MODIFIED',
  /** Restoring an installed file from the store failed (`details.path`). */
  FILE_RESTORE_FAILED: 'ERR_FILE_RESTORE_FAILED',
  /** An installed release's key or certificate was revoked by a followed index. */
  PACKAGE_REVOKED: 'ERR_PACKAGE_REVOKED',
  /** An installed release was removed from (or is no longer listed by) the followed indexes. */
  PACKAGE_REMOVED: 'ERR_PACKAGE_REMOVED',
  /** doctor: the DHT routing table is empty or a DHT query found nobody. */
  DHT_UNREACHABLE: 'ERR_DHT_UNREACHABLE',
  /** doctor: a bootstrap peer did not answer a dial and ping. */
  BOOTSTRAP_UNREACHABLE: 'ERR_BOOTSTRAP_UNREACHABLE',
  /** doctor: a mirror did not answer, answered with an error, or lacks a followed head. */
  MIRROR_UNHEALTHY: 'ERR_MIRROR_UNHEALTHY',
  /** doctor: this clock disagrees with a mirror's Date header or with index head timestamps. */
  CLOCK_SKEW: 'ERR_CLOCK_SKEW',
  /** doctor: a configured listen address is not bound (port taken, address not local). */
  LISTEN_NOT_BOUND: 'ERR_LISTEN_NOT_BOUND',
  /** doctor: a followed indexer's head is missing, expired or old. */
  HEAD_STALE: 'ERR_HEAD_STALE',
  /** doctor: idle DHT upkeep traffic above its target. */
  UPKEEP_HIGH: 'ERR_UPKEEP_HIGH',
  /** doctor / cache policy: the store is over `cache.maxSize` and only pinned blocks are left to evict. */
  CACHE_OVER_LIMIT: 'ERR_CACHE_OVER_LIMIT'
} as const

export type SwarmpackNodeErrorCode = typeof SwarmpackNodeErrorCode[keyof typeof SwarmpackNodeErrorCode]

export function nodeError (code: SwarmpackNodeErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): SwarmpackError {
  return new SwarmpackError(code, message, { details, ...(cause !== undefined ? { cause } : {}) })
}
