/** The trust policy the node hands to @swarmpack/trust, from the deployment config. */
import { isSwarmpackError } from '@swarmpack/core'
import { CompiledPolicy, type AttestationKind, type TrustPolicy } from '@swarmpack/trust'
import type { DeploymentConfig } from '../config/schema.js'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'

export function trustPolicyOf (config: DeploymentConfig): CompiledPolicy {
  const policy: TrustPolicy = {
    indexers: config.indexers.map(ix => ({ id: ix.id, keys: [...ix.keys] })),
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
