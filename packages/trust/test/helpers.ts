/**
 * Test world: real keys, a real on-disk block directory (the static mirror layout, one file per
 * block) and a real state directory, with a fake clock. Nothing here is mocked: the verifier under
 * test reads the same files a node would.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { CoreErrorCode, SwarmpackError, encodeCborBlock, mirrorBlockPath, rawCid, type Block } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'
import {
  acceptIndexerKey, buildIndex, generateSigningKey, issueDelegation, keyIdOf, signAttestation, signRelease, TrustVerifier,
  type BuiltIndex, type Ed25519PrivateKey, type IndexSlot, type Release, type TrustPolicy, type SignedObject, type Revocations
} from '../src/index.js'

export const HOUR = 3600_000
export const DAY = 24 * HOUR
export const T0 = Date.UTC(2026, 0, 1)

export interface Keys {
  root: Ed25519PrivateKey
  team: Ed25519PrivateKey
  publisher: Ed25519PrivateKey
  stranger: Ed25519PrivateKey
  indexerA: Ed25519PrivateKey
  indexerA2: Ed25519PrivateKey
  indexerB: Ed25519PrivateKey
  alice1: Ed25519PrivateKey
  alice2: Ed25519PrivateKey
  bob: Ed25519PrivateKey
  carol: Ed25519PrivateKey
}

let sharedKeys: Keys | undefined

async function makeKeys (): Promise<Keys> {
  sharedKeys ??= {
    root: await generateSigningKey(),
    team: await generateSigningKey(),
    publisher: await generateSigningKey(),
    stranger: await generateSigningKey(),
    indexerA: await generateSigningKey(),
    indexerA2: await generateSigningKey(),
    indexerB: await generateSigningKey(),
    alice1: await generateSigningKey(),
    alice2: await generateSigningKey(),
    bob: await generateSigningKey(),
    carol: await generateSigningKey()
  }
  return sharedKeys
}

export const id = keyIdOf

export class World {
  readonly dir: string
  readonly mirror: string
  readonly stateDir: string
  readonly keys: Keys
  t = T0
  readonly now = (): number => this.t
  readonly getBlock = async (cid: CID): Promise<Uint8Array> => {
    try {
      return await readFile(join(this.mirror, mirrorBlockPath(cid)))
    } catch (err) {
      throw new SwarmpackError(CoreErrorCode.NOT_FOUND, `no block ${cid.toString()}`, { cause: err })
    }
  }

  /** Index contents per indexer, so tests can publish the next version from the previous one. */
  readonly listings = new Map<string, Map<string, Map<string, IndexSlot>>>()
  readonly versions = new Map<string, number>()

  private constructor (dir: string, keys: Keys) {
    this.dir = dir
    this.mirror = join(dir, 'mirror')
    this.stateDir = join(dir, 'state')
    this.keys = keys
  }

  static async create (): Promise<World> {
    const dir = await mkdtemp(join(tmpdir(), 'swarmpack-trust-'))
    const w = new World(dir, await makeKeys())
    await mkdir(join(w.mirror, 'ipfs'), { recursive: true })
    return w
  }

  async close (): Promise<void> {
    await rm(this.dir, { recursive: true, force: true })
  }

  async put (block: Block | SignedObject): Promise<CID> {
    await writeFile(join(this.mirror, mirrorBlockPath(block.cid)), block.bytes)
    return block.cid
  }

  /** The policy every test starts from; `patch` overrides fields. */
  policy (patch: Partial<TrustPolicy> = {}): TrustPolicy {
    const k = this.keys
    return {
      indexers: [{ id: 'alpha', keys: [id(k.indexerA)] }, { id: 'beta', keys: [id(k.indexerB)] }],
      indexerThreshold: 2,
      publishers: [{ pattern: '@acme/*', roots: [id(k.root)] }],
      attesters: [
        { id: 'alice', keys: [id(k.alice1), id(k.alice2)] },
        { id: 'bob', keys: [id(k.bob)] },
        { id: 'carol', keys: [id(k.carol)] }
      ],
      attestations: [{ pattern: '@acme/*', threshold: 2 }],
      clockSkewMs: 60_000,
      ...patch
    }
  }

  verifier (patch: Partial<TrustPolicy> = {}): TrustVerifier {
    return new TrustVerifier({ policy: this.policy(patch), stateDir: this.stateDir, getBlock: this.getBlock, now: this.now })
  }

  /** A fake manifest block standing for a package variant's content. */
  async manifest (label: string): Promise<CID> {
    return this.put(encodeCborBlock({ manifest: label }))
  }

  /** root -> team (may delegate once) -> publisher, for `scope`. */
  async chain (scope = ['@acme/*'], leafScope = scope, opts: { teamDepth?: number, leafExpires?: number, leafNotBefore?: number } = {}): Promise<Uint8Array[]> {
    const k = this.keys
    const team = await issueDelegation(k.root, { audience: id(k.team), scope, notBefore: T0 - DAY, expires: T0 + 365 * DAY, maxDepth: opts.teamDepth ?? 1 })
    const leaf = await issueDelegation(k.team, { audience: id(k.publisher), scope: leafScope, notBefore: opts.leafNotBefore ?? T0 - DAY, expires: opts.leafExpires ?? T0 + 365 * DAY, maxDepth: 0 })
    return [team.bytes, leaf.bytes]
  }

  async release (rel: Partial<Release> & { name: string, version: string }, signer: Ed25519PrivateKey = this.keys.publisher, proofs?: Uint8Array[]): Promise<{ signed: SignedObject, release: Release, manifest: CID }> {
    const manifest = rel.variants?.['linux-x64']?.manifest ?? await this.manifest(`${rel.name}@${rel.version}`)
    const release: Release = { variants: { 'linux-x64': { manifest, size: 1234 } }, dependencies: {}, ...rel }
    const signed = await signRelease(signer, release, proofs ?? await this.chain())
    await this.put(signed)
    return { signed, release, manifest }
  }

  static slot (r: { signed: SignedObject, release: Release }): IndexSlot {
    return { release: r.signed.cid, size: r.signed.bytes.byteLength, variants: r.release.variants, dependencies: r.release.dependencies }
  }

  /** Publishes the next index version of `indexer` with `changes` applied; stores its blocks; returns the head. */
  async publishIndex (indexer: 'alpha' | 'beta', changes: Array<[string, string, IndexSlot | undefined]>, opts: {
    key?: Ed25519PrivateKey, version?: number, expires?: number, revocations?: Partial<Revocations>, nextKeys?: string[], shards?: number
    /** Holders of the next keys, who co-sign the hand-over (defaults to every next key the world owns). */
    nextKeyHolders?: Ed25519PrivateKey[]
  } = {}): Promise<BuiltIndex> {
    const entries = new Map([...(this.listings.get(indexer) ?? new Map<string, Map<string, IndexSlot>>())].map(([n, v]) => [n, new Map(v)]))
    for (const [name, version, slot] of changes) {
      const vs = entries.get(name) ?? new Map<string, IndexSlot>()
      if (slot === undefined) vs.delete(version); else vs.set(version, slot)
      if (vs.size === 0) entries.delete(name); else entries.set(name, vs)
    }
    const version = opts.version ?? (this.versions.get(indexer) ?? 0) + 1
    const key = opts.key ?? (indexer === 'alpha' ? this.keys.indexerA : this.keys.indexerB)
    let nextKeyProofs: Uint8Array[] | undefined
    if (opts.nextKeys !== undefined) {
      const holders = opts.nextKeyHolders ?? Object.values(this.keys).filter(k => opts.nextKeys?.includes(keyIdOf(k)))
      nextKeyProofs = await Promise.all(holders.map(async k => (await acceptIndexerKey(k, { indexer, version })).bytes))
    }
    const built = await buildIndex(key, {
      indexer, version, issued: this.t, expires: opts.expires ?? this.t + 7 * DAY, entries, revocations: opts.revocations, nextKeys: opts.nextKeys, nextKeyProofs, shards: opts.shards
    })
    for (const b of built.blocks) await this.put(b)
    this.listings.set(indexer, entries)
    this.versions.set(indexer, Math.max(version, this.versions.get(indexer) ?? 0))
    return built
  }

  async attest (key: Ed25519PrivateKey, name: string, version: string, manifest: CID, kind: 'rebuilt' | 'mirror-matched' = 'rebuilt', expires = this.t + 30 * DAY): Promise<Uint8Array> {
    return (await signAttestation(key, { subject: { name, version, manifest }, kind, issued: this.t - HOUR, expires })).bytes
  }

  /** sha-256 over every file's path and bytes under the state dir (evidence aside) and the block directory. */
  async snapshot (): Promise<string> {
    const h = createHash('sha256')
    const walk = async (dir: string): Promise<void> => {
      let names: string[]
      try { names = (await readdir(dir)).sort() } catch { return }
      for (const name of names) {
        const path = join(dir, name)
        if (path === join(this.stateDir, 'evidence')) continue
        try {
          const bytes = await readFile(path)
          h.update(relative(this.dir, path)).update('\0').update(bytes).update('\0')
        } catch {
          await walk(path)
        }
      }
    }
    await walk(this.stateDir)
    await walk(this.mirror)
    return h.digest('hex')
  }
}

export function rawManifestCid (label: string): CID {
  return rawCid(new TextEncoder().encode(label))
}

/** Minimal CBOR writer for hand-made (non-canonical) encodings: maps in the order given. */
export function cborHead (major: number, n: number): Uint8Array {
  if (n < 24) return Uint8Array.of((major << 5) | n)
  if (n < 256) return Uint8Array.of((major << 5) | 24, n)
  if (n < 65536) return Uint8Array.of((major << 5) | 25, n >> 8, n & 255)
  return Uint8Array.of((major << 5) | 26, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

export function cborMapInOrder (entries: Array<[string, string | Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = [cborHead(5, entries.length)]
  const te = new TextEncoder()
  for (const [k, v] of entries) {
    const kb = te.encode(k)
    parts.push(cborHead(3, kb.length), kb)
    if (typeof v === 'string') { const vb = te.encode(v); parts.push(cborHead(3, vb.length), vb) } else parts.push(cborHead(2, v.length), v)
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
