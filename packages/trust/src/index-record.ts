/**
 * Signed indexes, their shards and head records.
 *
 *   head   (signed, swarmpack/index-head@1): { indexer, version, index: CID, issued, expires,
 *                                              nextKeys?, nextKeyProofs? }
 *   proof  (signed by a next key, swarmpack/indexer-key@1): { indexer, version }
 *   index  (signed, swarmpack/index@1):      { indexer, version, issued, expires, releases,
 *                                              shards: CID[], revocations: { keys, certificates } }
 *   shard  (plain dag-cbor block):           { type, bucket, of, entries: name -> version -> entry }
 *
 * A name lives in exactly one shard, picked by the first four bytes of sha-256(name) modulo the
 * (power-of-two) shard count, so a lookup reads one shard and an unchanged shard keeps its CID from
 * one version to the next. Shards are hash-linked from the signed index, so they need no signature
 * of their own. A removed release stays as a tombstone, so a newer index can be checked against an
 * older one: whatever the old one listed must still be there, unchanged, or tombstoned.
 */
import { createHash } from 'node:crypto'
import { CoreErrorCode, DAG_CBOR_CODEC, SHA2_256_CODE, encodeCborBlock, isSwarmpackError, verifyBlock, MAX_BLOCK_SIZE, type Block } from '@swarmpack/core'
import { CID } from 'multiformats/cid'
import { decodeStrict } from './cbor.js'
import { MAX_ENVELOPE_BYTES, PayloadType, openEnvelope, signEnvelope, type SignedObject } from './envelope.js'
import { TrustErrorCode, trustError } from './errors.js'
import { publicKeyFromKeyId, type Ed25519PrivateKey, type KeyId } from './keys.js'
import { assertName, assertVersion } from './names.js'
import { validateDependencies, validateVariants, type Variant } from './release.js'
import { asArray, asBytes, asCid, asObject, asString, asStringList, asUint, expectKeys, malformed } from './schema.js'

export const SHARD_TYPE = 'swarmpack/index-shard@1'
export const MAX_SHARDS = 16384
export const MAX_REVOCATIONS = 10000
const INDEXER_ID_RE = /^[A-Za-z0-9_-]{1,128}$/

export interface IndexEntry {
  /** CID of the release envelope. */
  release: CID
  /** Byte size of the release envelope. */
  size: number
  variants: Record<string, Variant>
  dependencies: Record<string, string>
  /** Catalog metadata the indexer took from the manifest, so search and info need no manifest fetch. */
  description?: string
  categories?: string[]
  tags?: string[]
}

/** Bounds of an entry's catalog metadata (an index is fetched whole per shard: kept compact). */
export const MAX_ENTRY_DESCRIPTION = 1024
export const MAX_ENTRY_LABELS = 64
export const MAX_ENTRY_LABEL_LENGTH = 64

/** A release the indexer no longer vouches for; it stays so later indexes cannot drop it silently. */
export interface Tombstone { removed: string }

export type IndexSlot = IndexEntry | Tombstone

export function isTombstone (slot: IndexSlot): slot is Tombstone {
  return 'removed' in slot
}

export interface Revocations {
  /** Key ids no longer trusted in any role the index speaks for. */
  keys: KeyId[]
  /** CIDs (strings) of delegation certificates no longer valid. */
  certificates: string[]
}

export interface IndexHead {
  indexer: string
  version: number
  index: CID
  issued: number
  expires: number
  /** Key rotation: from the next version on, heads and indexes are signed by one of these keys. */
  nextKeys?: KeyId[]
  /**
   * With `nextKeys`: one `swarmpack/indexer-key@1` envelope per next key, signed by that key over
   * `{ indexer, version }` of this head (proof that each new key is held; see acceptIndexerKey).
   */
  nextKeyProofs?: Uint8Array[]
}

export interface IndexRoot {
  indexer: string
  version: number
  issued: number
  expires: number
  /** Number of live (not tombstoned) releases. */
  releases: number
  shards: CID[]
  revocations: Revocations
}

export type GetBlock = (cid: CID, options?: { signal?: AbortSignal }) => Promise<Uint8Array>

export function assertIndexerId (id: unknown, what = 'indexer'): string {
  if (typeof id !== 'string' || !INDEXER_ID_RE.test(id)) throw malformed(what, 'invalid indexer id')
  return id
}

/** Which of `of` shards holds `name`. */
export function shardFor (name: string, of: number): number {
  const h = createHash('sha256').update(name).digest()
  return h.readUInt32BE(0) % of
}

// ---- validation ----------------------------------------------------------------------------

function validateHead (raw: unknown): IndexHead {
  const what = 'index head'
  const obj = asObject(raw, what)
  expectKeys(obj, what, ['indexer', 'version', 'index', 'issued', 'expires'], ['nextKeys', 'nextKeyProofs'])
  const head: IndexHead = {
    indexer: assertIndexerId(obj.indexer, `${what}.indexer`),
    version: asUint(obj.version, `${what}.version`),
    index: asCid(obj.index, `${what}.index`),
    issued: asUint(obj.issued, `${what}.issued`),
    expires: asUint(obj.expires, `${what}.expires`)
  }
  if (head.expires <= head.issued) throw malformed(what, 'expires before it is issued')
  if (obj.nextKeys !== undefined) {
    head.nextKeys = asStringList(obj.nextKeys, `${what}.nextKeys`, 16, 80)
    if (head.nextKeys.length === 0) throw malformed(what, 'empty nextKeys')
    head.nextKeys.forEach(k => publicKeyFromKeyId(k))
    if (new Set(head.nextKeys).size !== head.nextKeys.length) throw malformed(what, 'a key listed twice in nextKeys')
    head.nextKeyProofs = asArray(obj.nextKeyProofs ?? [], `${what}.nextKeyProofs`, 16).map((p, i) => asBytes(p, `${what}.nextKeyProofs[${i}]`, MAX_ENVELOPE_BYTES[PayloadType.INDEXER_KEY]))
    checkHandover(head, head.nextKeys, head.nextKeyProofs)
  } else if (obj.nextKeyProofs !== undefined) {
    throw malformed(what, 'nextKeyProofs without nextKeys')
  }
  return head
}

/**
 * A hand-over to new keys counts only when every new key co-signed it: a head signed by the old
 * key alone could hand the indexer to a key nobody holds (or a typo), and the indexer would be
 * frozen for good. Each proof is an envelope by one next key over `{ indexer, version }` of this
 * very head, so it cannot be replayed into another indexer's or another version's hand-over.
 */
function checkHandover (head: IndexHead, nextKeys: KeyId[], proofs: Uint8Array[]): void {
  const signed = new Set<KeyId>()
  for (const bytes of proofs) {
    const env = openEnvelope(bytes, PayloadType.INDEXER_KEY)
    const what = 'indexer key proof'
    const obj = asObject(env.value, what)
    expectKeys(obj, what, ['indexer', 'version'])
    if (obj.indexer !== head.indexer || obj.version !== head.version) {
      throw trustError(TrustErrorCode.BAD_SIGNATURE, `hand-over proof by ${env.signer} is for ${String(obj.indexer).slice(0, 128)}@${String(obj.version).slice(0, 20)}, not ${head.indexer}@${head.version}`, { indexer: head.indexer, signer: env.signer })
    }
    if (!nextKeys.includes(env.signer)) throw trustError(TrustErrorCode.BAD_SIGNATURE, `hand-over proof by ${env.signer}, which is not one of the next keys`, { indexer: head.indexer, signer: env.signer })
    signed.add(env.signer)
  }
  const missing = nextKeys.filter(k => !signed.has(k))
  if (missing.length > 0) {
    throw trustError(TrustErrorCode.BAD_SIGNATURE, `hand-over of ${head.indexer}@${head.version} not co-signed by next key(s) ${missing.join(', ')}`, { indexer: head.indexer, missing })
  }
}

/** A new indexer key's co-signature of the hand-over head `{ indexer, version }` that names it in nextKeys. */
export async function acceptIndexerKey (newKey: Ed25519PrivateKey, handover: { indexer: string, version: number }): Promise<SignedObject> {
  assertIndexerId(handover.indexer)
  return signEnvelope(newKey, PayloadType.INDEXER_KEY, { indexer: handover.indexer, version: asUint(handover.version, 'hand-over version') })
}

function validateRevocations (raw: unknown, what: string): Revocations {
  const obj = asObject(raw, what)
  expectKeys(obj, what, ['keys', 'certificates'])
  const keys = asStringList(obj.keys, `${what}.keys`, MAX_REVOCATIONS, 80)
  keys.forEach(k => publicKeyFromKeyId(k))
  const certificates = asStringList(obj.certificates, `${what}.certificates`, MAX_REVOCATIONS, 128)
  for (const c of certificates) {
    // certificate ids are written one way only (as envelope CIDs print): a revocation in another
    // multibase, case or CID version would never match an id, so it is refused, not ignored
    let cid: CID
    try { cid = CID.parse(c) } catch { throw malformed(what, 'revoked certificate is not a CID') }
    if (cid.version !== 1 || cid.code !== DAG_CBOR_CODEC || cid.multihash.code !== SHA2_256_CODE || cid.toString() !== c) {
      throw malformed(what, `revoked certificate ${c.slice(0, 128)} is not written as a certificate id (base32 dag-cbor sha2-256 CIDv1)`)
    }
  }
  return { keys, certificates }
}

function validateIndexRoot (raw: unknown): IndexRoot {
  const what = 'index'
  const obj = asObject(raw, what)
  expectKeys(obj, what, ['indexer', 'version', 'issued', 'expires', 'releases', 'shards', 'revocations'])
  const shards = asArray(obj.shards, `${what}.shards`, MAX_SHARDS).map((c, i) => asCid(c, `${what}.shards[${i}]`))
  if (shards.length === 0 || (shards.length & (shards.length - 1)) !== 0) throw malformed(what, 'shard count must be a power of two')
  const root: IndexRoot = {
    indexer: assertIndexerId(obj.indexer, `${what}.indexer`),
    version: asUint(obj.version, `${what}.version`),
    issued: asUint(obj.issued, `${what}.issued`),
    expires: asUint(obj.expires, `${what}.expires`),
    releases: asUint(obj.releases, `${what}.releases`),
    shards,
    revocations: validateRevocations(obj.revocations, `${what}.revocations`)
  }
  if (root.expires <= root.issued) throw malformed(what, 'expires before it is issued')
  return root
}

function validateSlot (raw: unknown, what: string): IndexSlot {
  const obj = asObject(raw, what)
  if ('removed' in obj) {
    expectKeys(obj, what, ['removed'])
    return { removed: asString(obj.removed, `${what}.removed`, 256) }
  }
  expectKeys(obj, what, ['release', 'size', 'variants', 'dependencies'], ['description', 'categories', 'tags'])
  const entry: IndexEntry = {
    release: asCid(obj.release, `${what}.release`),
    size: asUint(obj.size, `${what}.size`),
    variants: validateVariants(obj.variants, `${what}.variants`),
    dependencies: validateDependencies(obj.dependencies, `${what}.dependencies`)
  }
  if (obj.description !== undefined) entry.description = asString(obj.description, `${what}.description`, MAX_ENTRY_DESCRIPTION)
  if (obj.categories !== undefined) entry.categories = validateLabels(obj.categories, `${what}.categories`)
  if (obj.tags !== undefined) entry.tags = validateLabels(obj.tags, `${what}.tags`)
  return entry
}

/** Categories and tags: distinct non-empty strings, bounded in count and length. */
function validateLabels (value: unknown, what: string): string[] {
  const labels = asStringList(value, what, MAX_ENTRY_LABELS, MAX_ENTRY_LABEL_LENGTH)
  if (new Set(labels).size !== labels.length) throw malformed(what, 'repeats a label')
  return labels
}

export type ShardEntries = Map<string, Map<string, IndexSlot>>

/** Decodes and checks one shard: canonical, typed, in its place, every name hashing to it. */
export function openShard (bytes: Uint8Array, bucket: number, of: number): ShardEntries {
  const what = `index shard ${bucket}/${of}`
  const obj = asObject(decodeStrict(bytes, { maxBytes: MAX_BLOCK_SIZE, what }), what)
  expectKeys(obj, what, ['type', 'bucket', 'of', 'entries'])
  if (obj.type !== SHARD_TYPE) throw trustError(TrustErrorCode.PAYLOAD_TYPE, `${what}: expected ${SHARD_TYPE}`, { got: String(obj.type).slice(0, 64) })
  if (obj.bucket !== bucket || obj.of !== of) throw malformed(what, 'shard is not in its place')
  const entries = asObject(obj.entries, `${what}.entries`)
  const out: ShardEntries = new Map()
  for (const [name, versions] of Object.entries(entries)) {
    assertName(name, `${what} name`)
    if (shardFor(name, of) !== bucket) throw malformed(what, `${name} belongs to another shard`)
    const vs = asObject(versions, `${what}.${name}`)
    const m = new Map<string, IndexSlot>()
    for (const [version, slot] of Object.entries(vs)) {
      assertVersion(version, `${what}.${name} version`)
      m.set(version, validateSlot(slot, `${what}.${name}@${version}`))
    }
    if (m.size === 0) throw malformed(what, `${name} lists no versions`)
    out.set(name, m)
  }
  return out
}

export interface VerifiedHead extends IndexHead { signer: KeyId, bytes: Uint8Array, payload: Uint8Array }
export interface VerifiedIndexRoot extends IndexRoot { signer: KeyId, cid: CID, bytes: Uint8Array }

export function openIndexHead (bytes: Uint8Array): VerifiedHead {
  const env = openEnvelope(bytes, PayloadType.INDEX_HEAD)
  return { ...validateHead(env.value), signer: env.signer, bytes, payload: env.payload }
}

export function openIndexRoot (bytes: Uint8Array): VerifiedIndexRoot {
  const env = openEnvelope(bytes, PayloadType.INDEX)
  return { ...validateIndexRoot(env.value), signer: env.signer, cid: env.cid, bytes }
}

/** Fetches a block and checks it hashes to its CID: ERR_TRUST_MISSING_BLOCK or ERR_TRUST_MISMATCH otherwise. */
export async function fetchVerified (getBlock: GetBlock, cid: CID, what: string, signal?: AbortSignal): Promise<Uint8Array> {
  let bytes: Uint8Array
  try {
    bytes = await getBlock(cid, { signal })
  } catch (err) {
    if (isSwarmpackError(err, CoreErrorCode.ABORTED)) throw err
    throw trustError(TrustErrorCode.MISSING_BLOCK, `${what} ${cid.toString()} is not available`, { cid: cid.toString(), what }, err)
  }
  try {
    verifyBlock(cid, bytes)
  } catch (err) {
    throw trustError(TrustErrorCode.MISMATCH, `${what} does not match its CID ${cid.toString()}`, { cid: cid.toString(), what }, err)
  }
  return bytes
}

// ---- building (indexer side) ---------------------------------------------------------------

export interface BuildIndexInput {
  indexer: string
  version: number
  issued: number
  expires: number
  /** name -> version -> entry or tombstone */
  entries: Map<string, Map<string, IndexSlot>>
  revocations?: Partial<Revocations>
  /** Rotation: keys that sign from the next version on. */
  nextKeys?: KeyId[]
  /** With nextKeys: each next key's `acceptIndexerKey` envelope bytes for this indexer and version. */
  nextKeyProofs?: Uint8Array[]
  /** Force a shard count (a power of two); picked from the size otherwise. */
  shards?: number
}

export interface BuiltIndex {
  head: SignedObject
  index: SignedObject
  shards: Block[]
  /** Every block to publish (index and shards); the head travels on its own. */
  blocks: Block[]
}

const TARGET_SHARD_BYTES = 256 * 1024

function metadataBytes (entry: IndexEntry): number {
  const labels = [...(entry.categories ?? []), ...(entry.tags ?? [])]
  return (entry.description?.length ?? 0) + labels.reduce((n, l) => n + l.length + 2, 0)
}

function encodeShards (entries: Map<string, Map<string, IndexSlot>>, of: number): Block[] | undefined {
  const buckets: Array<Record<string, Record<string, IndexSlot>>> = Array.from({ length: of }, () => ({}))
  for (const [name, versions] of entries) buckets[shardFor(name, of)][name] = Object.fromEntries(versions)
  const blocks: Block[] = []
  for (let bucket = 0; bucket < of; bucket++) {
    try {
      blocks.push(encodeCborBlock({ type: SHARD_TYPE, bucket, of, entries: buckets[bucket] }))
    } catch (err) {
      if (isSwarmpackError(err, CoreErrorCode.BLOCK_TOO_LARGE)) return undefined
      throw err
    }
  }
  return blocks
}

/** Builds and signs an index: shards, the signed root and the signed head. */
export async function buildIndex (key: Ed25519PrivateKey, input: BuildIndexInput): Promise<BuiltIndex> {
  assertIndexerId(input.indexer)
  let releases = 0
  let approxBytes = 0
  for (const [name, versions] of input.entries) {
    assertName(name)
    for (const [version, slot] of versions) {
      assertVersion(version)
      validateSlot(slot, `${name}@${version}`)
      if (!isTombstone(slot)) releases++
      approxBytes += 160 + name.length + Object.keys(slot).length * 8 + (isTombstone(slot) ? 0 : Object.keys(slot.variants).length * 48 + metadataBytes(slot))
    }
  }
  let of = input.shards ?? 1
  if (input.shards === undefined) while (of < MAX_SHARDS && approxBytes / of > TARGET_SHARD_BYTES) of *= 2
  let shards = encodeShards(input.entries, of)
  while (shards === undefined && input.shards === undefined && of < MAX_SHARDS) {
    of *= 2
    shards = encodeShards(input.entries, of)
  }
  if (shards === undefined) throw malformed('index', 'entries do not fit in the allowed shards')
  const root: IndexRoot = {
    indexer: input.indexer,
    version: input.version,
    issued: input.issued,
    expires: input.expires,
    releases,
    shards: shards.map(b => b.cid),
    revocations: { keys: input.revocations?.keys ?? [], certificates: input.revocations?.certificates ?? [] }
  }
  validateIndexRoot(root)
  const index = await signEnvelope(key, PayloadType.INDEX, root)
  const head: IndexHead = { indexer: input.indexer, version: input.version, index: index.cid, issued: input.issued, expires: input.expires }
  if (input.nextKeys !== undefined) head.nextKeys = input.nextKeys
  if (input.nextKeyProofs !== undefined) head.nextKeyProofs = input.nextKeyProofs
  validateHead(head)
  const signedHead = await signEnvelope(key, PayloadType.INDEX_HEAD, head)
  return { head: signedHead, index, shards, blocks: [{ cid: index.cid, bytes: index.bytes }, ...shards] }
}

/**
 * Signs a head for an index already built (same indexer and version). A head, once published, is
 * final: a second, different head for one version is equivocation, whatever changed (a later
 * expiry, a hand-over). To refresh an expiry or hand over keys, build the next version with the
 * same entries: unchanged shards keep their CIDs, so only the index and the head are new.
 */
export async function signIndexHead (key: Ed25519PrivateKey, head: IndexHead): Promise<SignedObject> {
  validateHead(head)
  return signEnvelope(key, PayloadType.INDEX_HEAD, head)
}

// ---- reading (verifier side) ---------------------------------------------------------------

/** A verified index root with lazy, verified shard reads. */
export class IndexView {
  readonly root: VerifiedIndexRoot
  private readonly getBlock: GetBlock
  private readonly cache = new Map<number, ShardEntries>()

  constructor (root: VerifiedIndexRoot, getBlock: GetBlock) {
    this.root = root
    this.getBlock = getBlock
  }

  static async load (indexCid: CID, getBlock: GetBlock, signal?: AbortSignal): Promise<IndexView> {
    const bytes = await fetchVerified(getBlock, indexCid, 'index', signal)
    return new IndexView(openIndexRoot(bytes), getBlock)
  }

  async shard (bucket: number, signal?: AbortSignal): Promise<ShardEntries> {
    const cached = this.cache.get(bucket)
    if (cached !== undefined) return cached
    const of = this.root.shards.length
    const bytes = await fetchVerified(this.getBlock, this.root.shards[bucket], 'index shard', signal)
    const entries = openShard(bytes, bucket, of)
    if (this.cache.size >= 16) this.cache.delete(this.cache.keys().next().value as number)
    this.cache.set(bucket, entries)
    return entries
  }

  async versions (name: string, signal?: AbortSignal): Promise<Map<string, IndexSlot> | undefined> {
    return (await this.shard(shardFor(name, this.root.shards.length), signal)).get(name)
  }

  async lookup (name: string, version: string, signal?: AbortSignal): Promise<IndexSlot | undefined> {
    return (await this.versions(name, signal))?.get(version)
  }

  /**
   * Reads and checks every shard, one at a time (memory stays at one shard), and confirms the
   * live-release count the root declares. Yields each shard's entries for callers that build tables.
   */
  async * verifyAll (signal?: AbortSignal): AsyncGenerator<ShardEntries> {
    const of = this.root.shards.length
    let live = 0
    for (let bucket = 0; bucket < of; bucket++) {
      const bytes = await fetchVerified(this.getBlock, this.root.shards[bucket], 'index shard', signal)
      const entries = openShard(bytes, bucket, of)
      for (const versions of entries.values()) for (const slot of versions.values()) if (!isTombstone(slot)) live++
      yield entries
    }
    if (live !== this.root.releases) throw malformed('index', `declares ${this.root.releases} releases but lists ${live}`)
  }
}

/**
 * Refuses a newer index that silently drops or rewrites what an older one listed: every old
 * name@version must still be present with the same release, or tombstoned. Shards whose CID did
 * not change are skipped. Shard counts are powers of two, so when the count changes each new shard
 * draws from exactly one old shard (or the reverse); visiting them in that order reads every shard
 * once, whatever the two layouts.
 */
export async function assertNoDrops (older: IndexView, newer: IndexView, signal?: AbortSignal): Promise<void> {
  const O = older.root.shards.length
  const N = newer.root.shards.length
  // old buckets ordered so that each new shard is needed by consecutive steps only
  const order: number[] = []
  if (N >= O) {
    for (let a = 0; a < O; a++) order.push(a)
  } else {
    for (let b = 0; b < N; b++) for (let a = b; a < O; a += N) order.push(a)
  }
  for (const a of order) {
    if (O === N && older.root.shards[a].equals(newer.root.shards[a])) continue
    const old = await older.shard(a, signal)
    const byNewBucket = new Map<number, Array<[string, Map<string, IndexSlot>]>>()
    for (const entry of old) {
      const b = shardFor(entry[0], N)
      const list = byNewBucket.get(b) ?? []
      list.push(entry)
      byNewBucket.set(b, list)
    }
    for (const b of [...byNewBucket.keys()].sort((x, y) => x - y)) {
      const next = await newer.shard(b, signal)
      for (const [name, versions] of byNewBucket.get(b) ?? []) checkEntries(name, versions, next.get(name), older.root.version, newer.root.version)
    }
  }
}

function checkEntries (name: string, versions: Map<string, IndexSlot>, now: Map<string, IndexSlot> | undefined, from: number, to: number): void {
  for (const [version, slot] of versions) {
    const next = now?.get(version)
    if (next === undefined) {
      throw trustError(TrustErrorCode.DROPPED, `index ${to} silently drops ${name}@${version} listed in ${from}`, { name, version, from, to })
    }
    if (isTombstone(slot)) {
      if (!isTombstone(next)) throw trustError(TrustErrorCode.DROPPED, `index ${to} resurrects removed ${name}@${version}`, { name, version, from, to })
      continue
    }
    if (!isTombstone(next) && !next.release.equals(slot.release)) {
      throw trustError(TrustErrorCode.DROPPED, `index ${to} rewrites ${name}@${version}`, { name, version, from, to })
    }
  }
}
