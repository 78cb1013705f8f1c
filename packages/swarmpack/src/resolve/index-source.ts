/**
 * The resolver's metadata over the followed indexes, with the trust policy applied lazily.
 *
 * A listing comes from the index shard that holds the name (one shard per indexer, read on first
 * use), and picks the variant this host would install. The trust check (`checkInstallable`, which
 * reads the signed release) runs only for versions the solver actually considers, through
 * `getDependencies`: a refused release becomes an unavailable version whose reason names the rule,
 * so the solver moves on to another version and explains the refusal if nothing fits.
 */
import { isSwarmpackError } from '@swarmpack/core'
import type { MetadataSource, PackageListing, VersionInfo, VersionMetadata } from '@swarmpack/resolver'
import { IndexView, isTombstone, type GetBlock, type InstallDecision, type TrustVerifier } from '@swarmpack/trust'
import type { CID } from 'multiformats/cid'
import { pickVariant } from '../config/platform.js'
import type { ModuleSpec } from '../config/schema.js'

export interface FollowedIndex { id: string, version: number, root: CID }

export interface IndexSourceInit {
  verifier: TrustVerifier
  getBlock: GetBlock
  indexes: FollowedIndex[]
  platform: string
  modules: Record<string, ModuleSpec>
  /** Attestations gathered for a release (bytes as received). */
  attestations?: (name: string, version: string, manifest: CID) => Promise<Uint8Array[]>
}

export interface Refusal { name: string, version: string, code: string, message: string }
export interface VariantMiss { name: string, version: string, platform: string, wanted?: string, variants: string[] }

export class IndexMetadataSource implements MetadataSource {
  /** Releases that passed the trust check, by `name@version`. */
  readonly decisions = new Map<string, InstallDecision>()
  readonly refusals = new Map<string, Refusal>()
  readonly variantMisses = new Map<string, VariantMiss>()
  private readonly views = new Map<string, Promise<IndexView>>()
  /** name@version -> manifest of the picked variant and its key. */
  private readonly picked = new Map<string, { variant: string, manifest: CID }>()

  constructor (private readonly init: IndexSourceInit) {}

  private async view (ix: FollowedIndex, signal?: AbortSignal): Promise<IndexView> {
    let v = this.views.get(ix.id)
    if (v === undefined) {
      v = IndexView.load(ix.root, this.init.getBlock, signal)
      this.views.set(ix.id, v)
      v.catch(() => this.views.delete(ix.id))
    }
    return v
  }

  async listVersions (name: string, options: { signal?: AbortSignal }): Promise<PackageListing> {
    const spec = this.init.modules[name]
    const wanted = typeof spec === 'object' ? spec.variant : undefined
    const found = new Map<string, string[]>()
    for (const ix of this.init.indexes) {
      const versions = await (await this.view(ix, options.signal)).versions(name, options.signal)
      for (const [version, slot] of versions ?? []) {
        if (isTombstone(slot) || found.has(version)) continue
        found.set(version, Object.keys(slot.variants).sort())
        const key = pickVariant(Object.keys(slot.variants), this.init.platform, wanted)
        if (key !== undefined) this.picked.set(`${name}@${version}`, { variant: key, manifest: slot.variants[key].manifest })
      }
    }
    if (found.size === 0) return { versions: [], unavailable: { kind: 'not-found', message: 'no followed index lists it' } }
    const versions: VersionInfo[] = []
    for (const [version, variants] of found) {
      const id = `${name}@${version}`
      if (this.picked.has(id)) { versions.push({ version }); continue }
      const miss: VariantMiss = { name, version, platform: this.init.platform, variants }
      if (wanted !== undefined) miss.wanted = wanted
      this.variantMisses.set(id, miss)
      versions.push({ version, unavailable: { kind: 'platform', message: `has no variant for ${wanted ?? this.init.platform} (variants: ${variants.join(', ')})` } })
    }
    return { versions }
  }

  async getDependencies (name: string, version: string, options: { signal?: AbortSignal }): Promise<VersionMetadata> {
    const id = `${name}@${version}`
    const pick = this.picked.get(id)
    if (pick === undefined) return { dependencies: {}, unavailable: { kind: 'other', message: 'not listed' } }
    try {
      const attestations = await this.init.attestations?.(name, version, pick.manifest) ?? []
      const decision = await this.init.verifier.checkInstallable(name, version, pick.manifest, { variant: pick.variant, attestations, ...(options.signal !== undefined ? { signal: options.signal } : {}) })
      this.decisions.set(id, decision)
      return { dependencies: decision.dependencies }
    } catch (err) {
      if (!isSwarmpackError(err) || err.code === 'ERR_ABORTED' || !err.code.startsWith('ERR_TRUST_')) throw err
      this.refusals.set(id, { name, version, code: err.code, message: err.message })
      return { dependencies: {}, unavailable: { kind: 'trust', message: `${err.code}: ${err.message}` } }
    }
  }
}
