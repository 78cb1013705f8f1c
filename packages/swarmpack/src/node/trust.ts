/** The trust policy the node hands to @swarmpack/trust, from the deployment config. */
import { isSwarmpackError } from '@swarmpack/core'
import { CompiledPolicy, type AttestationKind, type TrustPolicy } from '@swarmpack/trust'
import type { DeploymentConfig } from '../config/schema.js'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'

/**
 * A config may follow no indexer yet (a fresh `swarmpack init`, a node that only publishes), but
 * trust's policy needs one: this placeholder's key was generated once and its private half thrown
 * away, so nothing can ever be signed for it and nothing is trusted through it. The node never
 * follows it (following reads `config.indexers`).
 */
const NO_INDEXER = { id: 'no-indexer-followed', keys: ['12D3KooWRjhsXvGuCtwTgMig44trGR1mwvagWF9Dw1SfN85xNcuE'] }

export function trustPolicyOf (config: DeploymentConfig): CompiledPolicy {
  const policy: TrustPolicy = {
    indexers: config.indexers.length > 0 ? config.indexers.map(ix => ({ id: ix.id, keys: [...ix.keys] })) : [NO_INDEXER],
    indexerThreshold: config.trust.indexerThreshold,
    publishers: config.trust.publishers,
    attesters: config.trust.attesters,
    attestations: config.trust.attestations.map(a => ({ pattern: a.pattern, threshold: a.threshold, ...(a.kinds !== undefined ? { kinds: a.kinds as AttestationKind[] } : {}) })),
    ...(config.trust.clockSkewMs !== undefined ? { clockSkewMs: config.trust.clockSkewMs } : {}),
    ...(config.trust.maxChainDepth !== undefined ? { maxChainDepth: config.trust.maxChainDepth } : {})
  }
  try {
    return new CompiledPolicy(policy)
  } catch (err) {
    if (!isSwarmpackError(err)) throw err
    throw nodeError(SwarmpackNodeErrorCode.CONFIG_INVALID, `invalid deployment config: trust: ${err.message}`, { issues: [{ path: 'trust', message: err.message }] }, err)
  }
}
