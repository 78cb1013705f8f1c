/**
 * The config digest recorded in the lockfile: sha-256 over the canonical JSON of what decides a
 * resolution (platform, modules, followed indexers and their keys, the trust policy). Network,
 * cache and source settings do not change what gets installed, so they do not make a lock stale.
 */
import { createHash } from 'node:crypto'
import { canonicalJson } from '../util/json.js'
import { hostPlatform } from './platform.js'
import type { DeploymentConfig } from './schema.js'

export function configDigest (config: DeploymentConfig): string {
  const relevant = {
    platform: config.platform ?? hostPlatform(),
    modules: config.modules,
    indexers: config.indexers.map(ix => ({ id: ix.id, keys: [...ix.keys].sort() })),
    trust: config.trust
  }
  return 'sha256:' + createHash('sha256').update(canonicalJson(relevant)).digest('hex')
}
