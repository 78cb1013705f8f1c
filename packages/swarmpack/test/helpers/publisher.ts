/**
 * Test publisher: real keys, real packs, real signed releases and indexes, exported as a static
 * mirror directory (core's layout, with `indexes/<id>/head`) that nodes read, or nginx serves.
 */
import { mkdir, writeFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { FsBlockstore, exportMirror, pack, writeMirrorIndexHead, type CID } from '@swarmpack/core'
import {
  buildIndex, generateSigningKey, issueDelegation, keyIdOf, signRelease,
  type Ed25519PrivateKey, type IndexSlot, type Variant
} from '@swarmpack/trust'

const DAY = 24 * 3600_000

export interface PublishInput {
  name: string
  version: string
  /** Files of the package (path -> content). */
  files: Record<string, string | Uint8Array>
  dependencies?: Record<string, string>
  entry?: string
  /** Variant keys to build (each packed with its own platform); default ['any']. */
  variants?: string[]
  /** Sign with this key instead of the delegated publisher key (untrusted releases). */
  signer?: Ed25519PrivateKey
}

export interface Published { name: string, version: string, release: CID, manifests: Record<string, CID>, size: number }

export class TestPublisher {
  readonly entries = new Map<string, Map<string, IndexSlot>>()
  readonly roots: CID[] = []
  private revokedKeys: string[] = []
  version = 0

  private constructor (
    readonly dir: string,
    readonly store: FsBlockstore,
    readonly rootKey: Ed25519PrivateKey,
    readonly publisherKey: Ed25519PrivateKey,
    readonly indexerKey: Ed25519PrivateKey,
    readonly proofs: Uint8Array[],
    readonly indexerId: string
  ) {}

  static async create (dir: string, indexerId = 'test-index'): Promise<TestPublisher> {
    await mkdir(dir, { recursive: true })
    const store = await FsBlockstore.open(join(dir, 'store'), { fsync: false })
    const rootKey = await generateSigningKey()
    const publisherKey = await generateSigningKey()
    const indexerKey = await generateSigningKey()
    const now = Date.now()
    const cert = await issueDelegation(rootKey, { audience: keyIdOf(publisherKey), scope: ['*'], notBefore: now - DAY, expires: now + 365 * DAY })
    return new TestPublisher(dir, store, rootKey, publisherKey, indexerKey, [cert.bytes], indexerId)
  }

  get mirrorDir (): string {
    return join(this.dir, 'mirror')
  }

  /** The config parts that make a node trust this publisher and follow its index. */
  trustConfig (): { indexers: Array<{ id: string, keys: string[] }>, trust: { publishers: Array<{ pattern: string, roots: string[] }> } } {
    return {
      indexers: [{ id: this.indexerId, keys: [keyIdOf(this.indexerKey)] }],
      trust: { publishers: [{ pattern: '*', roots: [keyIdOf(this.rootKey)] }] }
    }
  }

  async publish (input: PublishInput): Promise<Published> {
    const src = join(this.dir, 'src', `${input.name.replace('/', '+')}@${input.version}`)
    await rm(src, { recursive: true, force: true })
    for (const [path, content] of Object.entries(input.files)) {
      await mkdir(join(src, path, '..'), { recursive: true })
      await writeFile(join(src, path), content)
    }
    const variants: Record<string, Variant> = {}
    const manifests: Record<string, CID> = {}
    let size = 0
    for (const key of input.variants ?? ['any']) {
      const r = await pack(src, {
        name: input.name,
        version: input.version,
        dependencies: input.dependencies ?? {},
        platform: key === 'any' ? 'any' : key,
        ...(input.entry !== undefined ? { entry: input.entry } : {})
      }, { blockstore: this.store })
      variants[key] = { manifest: r.root, size: r.totalSize }
      manifests[key] = r.root
      size = r.totalSize
      this.roots.push(r.root)
    }
    const release = await signRelease(input.signer ?? this.publisherKey, { name: input.name, version: input.version, variants, dependencies: input.dependencies ?? {} }, input.signer !== undefined ? [] : this.proofs)
    await this.store.put(release.cid, release.bytes)
    this.roots.push(release.cid)
    const versions = this.entries.get(input.name) ?? new Map<string, IndexSlot>()
    versions.set(input.version, { release: release.cid, size: release.bytes.byteLength, variants, dependencies: input.dependencies ?? {} })
    this.entries.set(input.name, versions)
    return { name: input.name, version: input.version, release: release.cid, manifests, size }
  }

  /** Revokes the publisher key in the next index (everything it signed becomes ERR_TRUST_REVOKED). */
  revokePublisher (): void {
    this.revokedKeys.push(keyIdOf(this.publisherKey))
  }

  /** Signs the next index version and exports every block plus the head into the mirror directory. */
  async publishIndex (): Promise<{ version: number, index: CID, head: Uint8Array }> {
    this.version++
    const now = Date.now()
    const built = await buildIndex(this.indexerKey, {
      indexer: this.indexerId,
      version: this.version,
      issued: now - 1000,
      expires: now + 7 * DAY,
      entries: this.entries,
      revocations: { keys: this.revokedKeys, certificates: [] }
    })
    for (const b of built.blocks) await this.store.put(b.cid, b.bytes)
    // the index envelope carries its shard CIDs inside the signed payload, not as links: export them as roots
    this.roots.push(built.index.cid, ...built.shards.map(b => b.cid))
    await exportMirror(this.store, this.roots, this.mirrorDir, { fsync: false })
    await writeMirrorIndexHead(this.mirrorDir, this.indexerId, built.head.bytes, { fsync: false })
    return { version: this.version, index: built.index.cid, head: built.head.bytes }
  }

  async close (): Promise<void> {
    await this.store.close()
  }
}

/** Deterministic pseudo-random bytes (a seed per content), so "1 % changed" is exact. */
export function seededBytes (size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size)
  let s = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    out[i] = s & 0xff
  }
  return out
}
