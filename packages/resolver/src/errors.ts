/** Codes raised by @swarmpack/resolver. All errors are `SwarmpackError`s from @swarmpack/core. */
export const ResolverErrorCode = {
  /** No set of versions satisfies the root's constraints; `details.failure` holds the explanation. */
  CONFLICT: 'ERR_RESOLVE_CONFLICT',
  /** The solver ran past its step or time limit before finding an answer. */
  LIMIT: 'ERR_RESOLVE_LIMIT',
  /** A range given by the caller (root dependencies, lockfile) is not valid npm semver. */
  INVALID_RANGE: 'ERR_INVALID_RANGE',
  /** A version given by the caller is not valid semver. */
  INVALID_VERSION: 'ERR_INVALID_VERSION',
  /** The metadata source failed (threw) while the solver needed its answer. */
  METADATA: 'ERR_RESOLVE_METADATA',
  /** A fetch ended with blocks no source supplied; `details.missing`, `missingCount`, `tried`. */
  FETCH_INCOMPLETE: 'ERR_FETCH_INCOMPLETE',
  /** A fetcher was configured wrongly (unknown policy, duplicate source name, bad timeout). */
  FETCH_CONFIG: 'ERR_FETCH_CONFIG'
} as const

export type ResolverErrorCode = typeof ResolverErrorCode[keyof typeof ResolverErrorCode]
