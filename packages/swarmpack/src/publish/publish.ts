/**
 * publish: packs a directory (or one per variant) into the block store, signs the release with the
 * publisher's key and delegation certificates, stores the release block, and hands it to an indexer.
 */
import { logger } from '@libp2p/logger'
import { pack, throwIfAborted, type PackProgressEvents, type PackageMetadata, type PutBlockstore } from '@swarmpack/core'
import { signRelease, type Ed25519PrivateKey, type Variant } from '@swarmpack/trust'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { PublishErrorCode, publishError } from './errors.js'
import type { AddResult, Indexer, IndexVersion } from './indexer.js'
import { variantKey } from './variants.js'

const log = logger('swarmpack:publish')

/** One build of the release: its directory and platform (and build variant). */
export interface VariantSource {
  dir: string
  platform: string
  variant?: string
}

/** Package metadata for every variant (platform and variant come from each `VariantSource`). */
export type PublishMeta = Omit<PackageMetadata, 'platform' | 'variant'> & { platform?: string, variant?: string }

export type PublishProgressEvents =
  PackProgressEvents |
  ProgressEvent<'swarmpack:publish:variant', { key: string, manifest: CID, size: number, blocks: number }> |
  ProgressEvent<'swarmpack:publish:release', { name: string, version: string, release: CID, variants: string[] }>

export interface PublishOptions extends ProgressOptions<PublishProgressEvents> {
  /** The publisher's signing key. */
  key: Ed25519PrivateKey
  /** Delegation certificates (envelope bytes) from the publisher's key up to a root. */
  certs?: Uint8Array[]
  /** Where the package and release blocks go. */
  blockstore: PutBlockstore
  /** Hand the release to this indexer. */
  indexer?: Indexer
  /** With an indexer: sign and publish the next index version right away (default true). */
  publishIndex?: boolean
  signal?: AbortSignal
}

export interface PublishedVariant { key: string, platform: string, variant?: string, manifest: CID, size: number, blocks: number }

export interface PublishResult {
  name: string
  version: string
  /** The signed release envelope, stored as a block. */
  release: { cid: CID, bytes: Uint8Array }
  variants: PublishedVariant[]
  /** What the indexer said (when one was given). */
  indexed?: AddResult
  /** The index version published (when `publishIndex`). */
  index?: IndexVersion
}

/**
 * Packs `dir` (one variant, platform from `meta.platform` or `any`) or each of `VariantSource[]`,
 * signs the release and stores it. ERR_PUBLISH_INVALID for bad input; pack's and trust's codes
 * for what they refuse.
 */
export async function publish (dir: string | VariantSource[], meta: PublishMeta, options: PublishOptions): Promise<PublishResult> {
  const { signal } = options
  throwIfAborted(signal)
  if (options.key?.type !== 'Ed25519') throw publishError(PublishErrorCode.PUBLISH_INVALID, 'publish needs an ed25519 signing key')
  const certs = options.certs ?? []
  if (!Array.isArray(certs) || !certs.every(c => c instanceof Uint8Array)) throw publishError(PublishErrorCode.PUBLISH_INVALID, 'certs must be delegation envelopes (Uint8Array)')
  const sources: VariantSource[] = typeof dir === 'string' ? [{ dir, platform: meta.platform ?? 'any', ...(meta.variant !== undefined ? { variant: meta.variant } : {}) }] : dir
  if (!Array.isArray(sources) || sources.length === 0) throw publishError(PublishErrorCode.PUBLISH_INVALID, 'nothing to publish: no variants')
  const keys = sources.map(s => variantKey(s.platform, s.variant))
  const dup = keys.find((k, i) => keys.indexOf(k) !== i)
  if (dup !== undefined) throw publishError(PublishErrorCode.PUBLISH_INVALID, `variant ${dup} given twice`, { variant: dup })

  const variants: PublishedVariant[] = []
  for (const [i, source] of sources.entries()) {
    const { platform: _p, variant: _v, ...common } = meta
    const packed = await pack(source.dir, { ...common, platform: source.platform, ...(source.variant !== undefined ? { variant: source.variant } : {}) }, {
      blockstore: options.blockstore, ...(signal !== undefined ? { signal } : {}), ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {})
    })
    const v: PublishedVariant = { key: keys[i], platform: source.platform, manifest: packed.root, size: packed.totalSize, blocks: packed.blocks }
    if (source.variant !== undefined) v.variant = source.variant
    variants.push(v)
    options.onProgress?.(new CustomProgressEvent('swarmpack:publish:variant', { key: v.key, manifest: v.manifest, size: v.size, blocks: v.blocks }))
  }
  const signed = await signRelease(options.key, {
    name: meta.name,
    version: meta.version,
    variants: Object.fromEntries(variants.map(v => [v.key, { manifest: v.manifest, size: v.size } satisfies Variant])),
    dependencies: meta.dependencies ?? {}
  }, certs)
  await options.blockstore.put(signed.cid, signed.bytes, { ...(signal !== undefined ? { signal } : {}) })
  options.onProgress?.(new CustomProgressEvent('swarmpack:publish:release', { name: meta.name, version: meta.version, release: signed.cid, variants: keys }))
  log('published %s@%s as %s (%s)', meta.name, meta.version, signed.cid, keys.join(', '))
  const result: PublishResult = { name: meta.name, version: meta.version, release: { cid: signed.cid, bytes: signed.bytes }, variants }
  if (options.indexer !== undefined) {
    result.indexed = await options.indexer.add(signed.bytes, { ...(signal !== undefined ? { signal } : {}) })
    if (options.publishIndex !== false) result.index = await options.indexer.publish({ ...(signal !== undefined ? { signal } : {}) })
  }
  return result
}
