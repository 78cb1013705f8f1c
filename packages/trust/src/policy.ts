/**
 * The local trust policy: configuration an administrator writes, never fetched from the network.
 * It names the indexers followed (with their keys) and how many must agree, the publisher roots for
 * name patterns, the attester identities (each may own several keys) and how many distinct
 * identities must attest names matching a pattern, and the clock skew tolerated.
 *
 * Thresholds count identities: an attester with three keys is one vote, and a key may belong to
 * one identity only (a policy that lists a key twice is refused, so it can never count twice).
 */
import { TrustErrorCode, trustError } from './errors.js'
import { publicKeyFromKeyId, type KeyId } from './keys.js'
import { AttestationKind } from './attestation.js'
import { anyPatternMatches, isValidPattern, patternMatches } from './names.js'
import { MAX_CHAIN_DEPTH } from './delegation.js'
import { assertIndexerId } from './index-record.js'

export interface IndexerPolicy {
  /** Local name of the indexer; its heads and indexes must carry the same id. */
  id: string
  /** Keys accepted for its heads and indexes (rotation may move on from these, see README). */
  keys: KeyId[]
}

export interface PublisherRoot {
  /** Name pattern (`*` within one segment) the roots may sign or delegate for. */
  pattern: string
  roots: KeyId[]
}

export interface AttesterIdentity {
  id: string
  keys: KeyId[]
}

export interface AttestationRule {
  pattern: string
  /** Distinct attester identities required. */
  threshold: number
  /** Kinds that count; all kinds when absent. */
  kinds?: AttestationKind[]
}

export interface TrustPolicy {
  indexers: IndexerPolicy[]
  /** How many followed indexers must list the same release. */
  indexerThreshold: number
  publishers: PublisherRoot[]
  attesters?: AttesterIdentity[]
  attestations?: AttestationRule[]
  /** Tolerated clock difference, milliseconds (default 5 minutes). */
  clockSkewMs?: number
  /** Longest delegation chain accepted (default and ceiling 8). */
  maxChainDepth?: number
}

/** A validated policy with the lookups the verifier needs. */
export class CompiledPolicy {
  readonly policy: TrustPolicy
  readonly skew: number
  readonly maxChainDepth: number
  private readonly attesterByKey = new Map<KeyId, string>()

  constructor (policy: TrustPolicy) {
    const bad = (why: string): never => { throw trustError(TrustErrorCode.POLICY, `trust policy: ${why}`) }
    const checkKey = (k: unknown, where: string): void => {
      try { publicKeyFromKeyId(k) } catch { bad(`${where}: invalid key id ${String(k).slice(0, 80)}`) }
    }
    if (!Array.isArray(policy.indexers) || policy.indexers.length === 0) bad('no indexers')
    const indexerIds = new Set<string>()
    const indexerKeys = new Set<KeyId>()
    for (const ix of policy.indexers) {
      try { assertIndexerId(ix.id) } catch { bad(`invalid indexer id ${String(ix.id).slice(0, 80)}`) }
      if (indexerIds.has(ix.id)) bad(`indexer ${ix.id} listed twice`)
      indexerIds.add(ix.id)
      if (!Array.isArray(ix.keys) || ix.keys.length === 0) bad(`indexer ${ix.id} has no keys`)
      for (const k of ix.keys) {
        checkKey(k, `indexer ${ix.id}`)
        if (indexerKeys.has(k)) bad(`key ${k} belongs to two indexers`)
        indexerKeys.add(k)
      }
    }
    if (!Number.isSafeInteger(policy.indexerThreshold) || policy.indexerThreshold < 1 || policy.indexerThreshold > policy.indexers.length) {
      bad('indexerThreshold must be between 1 and the number of indexers')
    }
    if (!Array.isArray(policy.publishers)) bad('publishers must be a list')
    for (const p of policy.publishers) {
      if (!isValidPattern(p.pattern)) bad(`invalid publisher pattern ${String(p.pattern).slice(0, 80)}`)
      if (!Array.isArray(p.roots) || p.roots.length === 0) bad(`pattern ${p.pattern} has no roots`)
      p.roots.forEach(k => checkKey(k, `publisher root for ${p.pattern}`))
    }
    const identityIds = new Set<string>()
    for (const a of policy.attesters ?? []) {
      if (typeof a.id !== 'string' || a.id.length === 0 || a.id.length > 128) bad('invalid attester id')
      if (identityIds.has(a.id)) bad(`attester ${a.id} listed twice`)
      identityIds.add(a.id)
      if (!Array.isArray(a.keys) || a.keys.length === 0) bad(`attester ${a.id} has no keys`)
      for (const k of a.keys) {
        checkKey(k, `attester ${a.id}`)
        const owner = this.attesterByKey.get(k)
        if (owner !== undefined) bad(`key ${k} belongs to attesters ${owner} and ${a.id}: one key is one identity`)
        this.attesterByKey.set(k, a.id)
      }
    }
    for (const r of policy.attestations ?? []) {
      if (!isValidPattern(r.pattern)) bad(`invalid attestation pattern ${String(r.pattern).slice(0, 80)}`)
      if (!Number.isSafeInteger(r.threshold) || r.threshold < 0) bad(`invalid threshold for ${r.pattern}`)
      if (r.threshold > identityIds.size) bad(`threshold ${r.threshold} for ${r.pattern} exceeds the ${identityIds.size} attester identities`)
      for (const k of r.kinds ?? []) if (!Object.values(AttestationKind).includes(k)) bad(`unknown attestation kind ${String(k)}`)
    }
    const skew = policy.clockSkewMs ?? 5 * 60_000
    if (!Number.isSafeInteger(skew) || skew < 0 || skew > 24 * 3600_000) bad('clockSkewMs must be between 0 and one day')
    const depth = policy.maxChainDepth ?? MAX_CHAIN_DEPTH
    if (!Number.isSafeInteger(depth) || depth < 0 || depth > MAX_CHAIN_DEPTH) bad(`maxChainDepth must be between 0 and ${MAX_CHAIN_DEPTH}`)
    this.policy = structuredClone(policy)
    this.skew = skew
    this.maxChainDepth = depth
  }

  indexer (id: string): IndexerPolicy | undefined {
    return this.policy.indexers.find(i => i.id === id)
  }

  /** Root key -> every pattern the policy trusts it for, restricted to roots that may speak for `name`. */
  rootsFor (name: string): Map<KeyId, string[]> {
    const all = new Map<KeyId, string[]>()
    for (const p of this.policy.publishers) {
      for (const k of p.roots) all.set(k, [...(all.get(k) ?? []), p.pattern])
    }
    for (const [k, patterns] of all) if (!anyPatternMatches(patterns, name)) all.delete(k)
    return all
  }

  /** Every attestation rule matching `name`; each must hold (none overrides another, whatever the order). */
  attestationRulesFor (name: string): AttestationRule[] {
    return (this.policy.attestations ?? []).filter(r => patternMatches(r.pattern, name))
  }

  attesterOf (key: KeyId): string | undefined {
    return this.attesterByKey.get(key)
  }
}
