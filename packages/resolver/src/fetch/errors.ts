/** The fetcher's typed failures. */
import { CoreErrorCode, SwarmpackError, isSwarmpackError } from '@swarmpack/core'
import { ResolverErrorCode } from '../errors.js'

/** Most missing CIDs listed in an error (the count is always exact). */
export const MAX_LISTED_MISSING = 20

export interface IncompleteDetails {
  root?: string
  missing: string[]
  missingCount: number
  tried: string[]
  /** Why each source did not deliver, one line per source (first reason seen). */
  reasons: Record<string, string>
  /** What ended the fetch: every source answered, or nothing verified arrived for too long. */
  cause: 'exhausted' | 'stalled' | 'no-sources'
}

/** ERR_FETCH_INCOMPLETE, with its details also as properties. */
export type FetchIncompleteError = SwarmpackError & { missing: string[], missingCount: number, tried: string[], details: IncompleteDetails }

export function isFetchIncomplete (err: unknown): err is FetchIncompleteError {
  return isSwarmpackError(err, ResolverErrorCode.FETCH_INCOMPLETE)
}

export function incompleteError (details: IncompleteDetails): FetchIncompleteError {
  const what = details.root !== undefined ? ` of ${details.root}` : ''
  const tried = details.tried.length > 0 ? `tried ${details.tried.join(', ')}` : 'no source allowed by the policy'
  const why = details.cause === 'stalled' ? ' (no verified progress before the stall deadline)' : ''
  const err = new SwarmpackError(ResolverErrorCode.FETCH_INCOMPLETE,
    `${details.missingCount} block${details.missingCount === 1 ? '' : 's'}${what} could not be fetched${why}; ${tried}; missing ${details.missing.slice(0, 3).join(', ')}${details.missingCount > 3 ? ', ...' : ''}`,
    { details: { ...details } })
  return Object.assign(err, { missing: details.missing, missingCount: details.missingCount, tried: details.tried }) as FetchIncompleteError
}

export function abortedError (reason?: unknown): SwarmpackError {
  return new SwarmpackError(CoreErrorCode.ABORTED, 'the fetch was aborted', { cause: reason })
}
