/**
 * resolve: PubGrub over the followed indexes, into a lock. Writes nothing.
 */
import { isSwarmpackError, SwarmpackError } from '@swarmpack/core'
import { resolve as solve, ResolverErrorCode, type DerivationNode, type ResolveFailureDetails } from '@swarmpack/resolver'
import type { GetBlock, TrustVerifier } from '@swarmpack/trust'
import { configDigest } from '../config/digest.js'
import { hostPlatform } from '../config/platform.js'
import type { DeploymentConfig } from '../config/schema.js'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import { LOCKFILE_VERSION, packageKey, type Lockfile, type LockedPackage } from '../lock/format.js'
import { IndexMetadataSource, type FollowedIndex } from './index-source.js'
import type { CID } from 'multiformats/cid'

export interface ResolveInit {
  config: DeploymentConfig
  verifier: TrustVerifier
  getBlock: GetBlock
  indexes: FollowedIndex[]
  /** Current lock: its versions are kept while they fit. */
  locked?: Lockfile
  /** Names to move to their newest fitting version (`true`: all). */
  update?: string[] | true
  attestations?: (name: string, version: string, manifest: CID) => Promise<Uint8Array[]>
  signal?: AbortSignal
  timeoutMs?: number
}

function rangeOf (spec: DeploymentConfig['modules'][string]): string {
  return typeof spec === 'string' ? spec : spec.range
}

export async function resolveLock (init: ResolveInit): Promise<Lockfile> {
  const { config } = init
  const platform = config.platform ?? hostPlatform()
  const source = new IndexMetadataSource({
    verifier: init.verifier,
    getBlock: init.getBlock,
    indexes: init.indexes,
    platform,
    modules: config.modules,
    ...(init.attestations !== undefined ? { attestations: init.attestations } : {})
  })
  const dependencies = Object.fromEntries(Object.entries(config.modules).map(([n, s]) => [n, rangeOf(s)]))
  const locked = init.locked !== undefined
    ? Object.fromEntries(Object.keys(init.locked.packages).map(k => { const at = k.lastIndexOf('@'); return [k.slice(0, at), k.slice(at + 1)] }))
    : undefined
  let resolution
  try {
    resolution = await solve({
      rootName: 'deployment',
      dependencies,
      source,
      ...(locked !== undefined ? { locked } : {}),
      ...(init.update !== undefined ? { update: init.update } : {}),
      ...(init.signal !== undefined ? { signal: init.signal } : {}),
      ...(init.timeoutMs !== undefined ? { timeoutMs: init.timeoutMs } : {})
    })
  } catch (err) {
    throw explainFailure(err, source)
  }
  const packages: Record<string, LockedPackage> = {}
  for (const [name, version] of resolution.versions) {
    const decision = source.decisions.get(packageKey(name, version))
    if (decision === undefined) throw new SwarmpackError('ERR_INTERNAL', `no trust decision for ${name}@${version}`)
    const resolved: Record<string, string> = {}
    for (const dep of Object.keys(decision.dependencies)) {
      const v = resolution.versions.get(dep)
      if (v !== undefined) resolved[dep] = v
    }
    packages[packageKey(name, version)] = {
      variant: decision.variant,
      release: decision.release.toString(),
      manifest: decision.manifest.toString(),
      size: decision.size,
      dependencies: { ...decision.dependencies },
      resolved
    }
  }
  return {
    lockfileVersion: LOCKFILE_VERSION,
    configDigest: configDigest(config),
    platform,
    modules: structuredClone(config.modules),
    indexes: init.indexes.map(ix => ({ id: ix.id, version: ix.version, root: ix.root.toString() })).sort((a, b) => a.id < b.id ? -1 : 1),
    packages
  }
}

function collectUnavailable (node: DerivationNode | undefined, out: Array<{ name: string, version?: string, kind: string }>, seen = new Set<number>()): void {
  if (node === undefined || seen.has(node.id)) return
  seen.add(node.id)
  for (const u of node.unavailable ?? []) out.push({ name: u.name, ...(u.version !== undefined ? { version: u.version } : {}), kind: u.reason.kind })
  for (const c of node.causes ?? []) collectUnavailable(c, out, seen)
}

/** Turns a solver failure into the node's code: trust refusal, missing variant, or plain conflict. */
function explainFailure (err: unknown, source: IndexMetadataSource): unknown {
  if (!isSwarmpackError(err, ResolverErrorCode.CONFLICT)) {
    if (isSwarmpackError(err, ResolverErrorCode.METADATA) && isSwarmpackError(err.cause)) return err.cause
    return err
  }
  const failure = (err.details as ResolveFailureDetails).failure
  const reasons: Array<{ name: string, version?: string, kind: string }> = []
  collectUnavailable(failure.derivation, reasons)
  const refusals = reasons.filter(r => r.kind === 'trust').map(r => source.refusals.get(`${r.name}@${r.version ?? ''}`)).filter(r => r !== undefined)
  const misses = reasons.filter(r => r.kind === 'platform').map(r => source.variantMisses.get(`${r.name}@${r.version ?? ''}`)).filter(m => m !== undefined)
  const details = { explanation: failure.explanation, lines: failure.lines, derivation: failure.derivation }
  if (refusals.length > 0) {
    return nodeError(SwarmpackNodeErrorCode.TRUST_REFUSED, `the trust policy refuses what the deployment needs:\n${failure.explanation}`, {
      ...details, refusals, trustCode: refusals[0].code
    }, err)
  }
  if (misses.length > 0) {
    const variants = [...new Set(misses.flatMap(m => m.variants))].sort()
    const list = misses.map(m => `${m.name}@${m.version}: ${m.variants.join(', ')}`).join('; ')
    return nodeError(SwarmpackNodeErrorCode.NO_VARIANT, `no variant for ${misses[0].wanted ?? misses[0].platform}; variants that exist: ${list}`, {
      ...details, platform: misses[0].platform, variants, misses
    }, err)
  }
  return nodeError(SwarmpackNodeErrorCode.UNRESOLVABLE, `the deployment cannot be resolved:\n${failure.explanation}`, details, err)
}
