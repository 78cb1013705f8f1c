/**
 * Source policy: which sources a block may be asked of, in which order, and when a mirror joins
 * in under `peers-first` (the swarm has no untried, healthy peer source for the block, or the
 * block has waited past the hedge deadline).
 */
import { SwarmpackError } from '@swarmpack/core'
import { ResolverErrorCode } from '../errors.js'
import type { SourceKind, SourcePolicy } from './types.js'

export const SOURCE_POLICIES: readonly SourcePolicy[] = ['peers-first', 'race', 'peers-only', 'mirrors-only']

export function checkPolicy (policy: unknown): SourcePolicy {
  if (!SOURCE_POLICIES.includes(policy as SourcePolicy)) {
    throw new SwarmpackError(ResolverErrorCode.FETCH_CONFIG, `unknown source policy ${JSON.stringify(policy)}; use one of ${SOURCE_POLICIES.join(', ')}`, { details: { policy } })
  }
  return policy as SourcePolicy
}

/** Whether the policy lets this kind of source be asked at all. */
export function kindAllowed (policy: SourcePolicy, kind: SourceKind): boolean {
  if (policy === 'peers-only') return kind === 'peer'
  if (policy === 'mirrors-only') return kind === 'mirror'
  return true
}

/** Sort key: lower is asked first. Demoted sources (failing lately) go after all healthy ones. */
export function rankOf (policy: SourcePolicy, kind: SourceKind, priority: number, demoted: boolean, latency: number | undefined): number {
  const kindRank = policy === 'race' ? 0 : kind === 'peer' ? 0 : 1
  // within a kind: priority, then the faster source first (latency in ms, under 1e6)
  return (demoted ? 1e12 : 0) + kindRank * 1e10 + priority * 1e7 + Math.min(latency ?? 0, 999_999)
}
