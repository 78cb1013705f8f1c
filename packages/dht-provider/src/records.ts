/**
 * Signed index-head records in the DHT. An indexer publishes `{version, indexCid, expiry}` under
 * `/swarmpack-head/<indexer peer id>`; the record carries an ed25519 signature by that key, and
 * the key itself is derived from the record key (an ed25519 peer id embeds its public key), so a
 * record can never claim another indexer. kad-dht runs the validator on every record it stores
 * or returns, and the selector picks the highest version when peers disagree.
 *
 * Value bytes (dag-cbor): { v: 1, version, indexCid, expiry, sig }
 * Signed bytes (dag-cbor): { domain: 'swarmpack/index-head/v1', key, version, indexCid, expiry }
 */
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { CID, SwarmpackError, decodeCbor, encodeCborBlock } from '@swarmpack/core'
import { compare } from 'uint8arrays/compare'
import { fromString } from 'uint8arrays/from-string'
import { toString } from 'uint8arrays/to-string'
import { DhtErrorCode } from './errors.js'
import type { PeerId, PrivateKey, PublicKey, AbortOptions } from '@libp2p/interface'
import type { KadDHT, QueryEvent, SelectFn, ValidateFn } from '@libp2p/kad-dht'

/** Key namespace; kad-dht picks the validator and selector by the first path segment. */
export const INDEX_HEAD_NAMESPACE = 'swarmpack-head'
/** Records larger than this are refused (a real one is about 200 bytes). */
export const MAX_INDEX_HEAD_RECORD_SIZE = 1024
const SIGNING_DOMAIN = 'swarmpack/index-head/v1'

export interface IndexHead {
  /** Strictly increasing per indexer. */
  version: number
  /** Root block of the signed index. */
  indexCid: CID
  /** Milliseconds since the epoch after which the head is frozen and refused. */
  expiry: number
}

export interface VerifiedIndexHead extends IndexHead {
  /** The indexer that signed it. */
  indexer: PeerId
}

function invalid (message: string, cause?: unknown): SwarmpackError {
  return new SwarmpackError(DhtErrorCode.INVALID_RECORD, message, cause === undefined ? {} : { cause })
}

/** The DHT key for an indexer's head: `/swarmpack-head/<peer id>`. */
export function indexHeadKey (indexer: PeerId | PublicKey | string): Uint8Array {
  // a PublicKey carries its raw bytes; a PeerId does not
  const id = typeof indexer === 'string' ? indexer : 'raw' in indexer ? peerIdFromPublicKey(indexer).toString() : indexer.toString()
  return fromString(`/${INDEX_HEAD_NAMESPACE}/${id}`)
}

/** The indexer's public key named by a record key; only ed25519 ids (which embed the key) qualify. */
function indexerOfKey (key: Uint8Array): { peerId: PeerId, publicKey: PublicKey } {
  const text = toString(key)
  const prefix = `/${INDEX_HEAD_NAMESPACE}/`
  if (!text.startsWith(prefix)) throw invalid('record key is not in the swarmpack-head namespace')
  let peerId: PeerId
  try {
    peerId = peerIdFromString(text.slice(prefix.length))
  } catch (err) {
    throw invalid('record key does not name a peer id', err)
  }
  if (peerId.type !== 'Ed25519' || peerId.publicKey == null) throw invalid('index heads must be signed by an ed25519 key')
  return { peerId, publicKey: peerId.publicKey }
}

function signedBytes (key: Uint8Array, head: IndexHead): Uint8Array {
  return encodeCborBlock({ domain: SIGNING_DOMAIN, key: toString(key), version: head.version, indexCid: head.indexCid, expiry: head.expiry }).bytes
}

function checkHeadFields (head: IndexHead): void {
  if (!Number.isSafeInteger(head.version) || head.version < 0) throw invalid('version must be a non-negative integer')
  if (!Number.isSafeInteger(head.expiry) || head.expiry <= 0) throw invalid('expiry must be a positive integer (ms since epoch)')
  if (CID.asCID(head.indexCid) == null) throw invalid('indexCid must be a CID')
}

/** Signs a head with the indexer's ed25519 key and returns the record value bytes. */
export async function createIndexHeadRecord (privateKey: PrivateKey, head: IndexHead): Promise<Uint8Array> {
  if (privateKey.type !== 'Ed25519') throw invalid('index heads must be signed by an ed25519 key')
  checkHeadFields(head)
  const key = indexHeadKey(privateKey.publicKey)
  const sig = await privateKey.sign(signedBytes(key, head))
  const bytes = encodeCborBlock({ v: 1, version: head.version, indexCid: head.indexCid, expiry: head.expiry, sig }).bytes
  if (bytes.byteLength > MAX_INDEX_HEAD_RECORD_SIZE) throw invalid('record exceeds the size cap')
  return bytes
}

/** Decodes a record value without checking the signature (the selector's cheap path). */
function decodeHead (bytes: Uint8Array): IndexHead & { sig: Uint8Array } {
  if (bytes.byteLength > MAX_INDEX_HEAD_RECORD_SIZE) throw invalid(`record of ${bytes.byteLength} bytes exceeds ${MAX_INDEX_HEAD_RECORD_SIZE}`)
  let value: unknown
  try {
    value = decodeCbor(bytes)
  } catch (err) {
    throw invalid('record is not dag-cbor', err)
  }
  if (value === null || typeof value !== 'object') throw invalid('record is not a map')
  const v = value as Record<string, unknown>
  if (v.v !== 1) throw invalid('unknown record format version')
  if (!(v.sig instanceof Uint8Array) || v.sig.byteLength !== 64) throw invalid('record lacks an ed25519 signature')
  const indexCid = CID.asCID(v.indexCid)
  if (indexCid == null) throw invalid('indexCid must be a CID')
  const head = { version: v.version as number, indexCid, expiry: v.expiry as number, sig: v.sig }
  checkHeadFields(head)
  return head
}

/**
 * Full check of a record: format, size cap, signature by the key named in the record key, and
 * expiry. Returns the head; throws ERR_DHT_INVALID_RECORD otherwise.
 */
export async function verifyIndexHeadRecord (key: Uint8Array, bytes: Uint8Array, options: { now?: number } = {}): Promise<VerifiedIndexHead> {
  const { peerId, publicKey } = indexerOfKey(key)
  const head = decodeHead(bytes)
  const ok = await publicKey.verify(signedBytes(key, head), head.sig)
  if (!ok) throw invalid('record signature does not verify against the indexer key')
  if (head.expiry <= (options.now ?? Date.now())) throw invalid('record has expired')
  return { version: head.version, indexCid: head.indexCid, expiry: head.expiry, indexer: peerId }
}

/** kad-dht validator: throws on any record that fails `verifyIndexHeadRecord`. */
export const indexHeadValidator: ValidateFn = async (key, value) => {
  await verifyIndexHeadRecord(key, value)
}

/**
 * kad-dht selector: the highest version wins; among equal versions the later expiry, then the
 * smaller bytes, so every node picks the same record. Undecodable records never win.
 */
export const indexHeadSelector: SelectFn = (_key, records) => {
  let best = -1
  let bestHead: IndexHead | undefined
  records.forEach((bytes, i) => {
    let head: IndexHead
    try { head = decodeHead(bytes) } catch { return }
    if (bestHead === undefined || head.version > bestHead.version ||
      (head.version === bestHead.version && (head.expiry > bestHead.expiry ||
        (head.expiry === bestHead.expiry && compare(bytes, records[best]) < 0)))) {
      best = i
      bestHead = head
    }
  })
  return Math.max(best, 0)
}

/**
 * The highest index head this node has validated per indexer key. kad-dht stores whatever valid
 * record a peer PUTs, overwriting what it held; with this memory the validator refuses a lower
 * version (a rollback, or a stale re-publish) and a different index under the same version (two
 * heads with one version), so a node never serves an older head than one it has seen.
 */
export class IndexHeadMemory {
  private readonly heads = new Map<string, { version: number, indexCid: string }>()
  constructor (private readonly maxKeys = 10_000) {}

  /** Throws ERR_DHT_INVALID_RECORD if `head` goes back from what was seen; remembers it otherwise. */
  admit (key: Uint8Array, head: IndexHead): void {
    const k = toString(key, 'base64')
    const seen = this.heads.get(k)
    if (seen !== undefined) {
      if (head.version < seen.version) throw invalid(`index head version ${head.version} is older than ${seen.version} already seen`)
      if (head.version === seen.version && head.indexCid.toString() !== seen.indexCid) throw invalid(`two different index heads carry version ${head.version}`)
    }
    this.heads.delete(k)
    this.heads.set(k, { version: head.version, indexCid: head.indexCid.toString() })
    if (this.heads.size > this.maxKeys) this.heads.delete(this.heads.keys().next().value as string)
  }

  highest (key: Uint8Array): number | undefined {
    return this.heads.get(toString(key, 'base64'))?.version
  }
}

/** A validator that also refuses rollbacks against this node's memory of the highest heads. */
export function createIndexHeadValidator (memory: IndexHeadMemory): ValidateFn {
  return async (key, value) => {
    const head = await verifyIndexHeadRecord(key, value)
    memory.admit(key, head)
  }
}

/** Stateless validators and selectors (no rollback memory), for a DHT configured elsewhere. */
export const swarmpackDhtValidators: Record<string, ValidateFn> = { [INDEX_HEAD_NAMESPACE]: indexHeadValidator }
export const swarmpackDhtSelectors: Record<string, SelectFn> = { [INDEX_HEAD_NAMESPACE]: indexHeadSelector }

/** Validators (with their own rollback memory) and selectors for one node's kad-dht. */
export function createSwarmpackDhtRecords (memory = new IndexHeadMemory()): { validators: Record<string, ValidateFn>, selectors: Record<string, SelectFn>, memory: IndexHeadMemory } {
  return { validators: { [INDEX_HEAD_NAMESPACE]: createIndexHeadValidator(memory) }, selectors: { ...swarmpackDhtSelectors }, memory }
}

/** Adds the swarmpack validators and selectors to a DHT created elsewhere (a host's own node). */
export function registerSwarmpackRecords (dht: KadDHT, records = createSwarmpackDhtRecords()): void {
  Object.assign(dht.validators, records.validators)
  Object.assign(dht.selectors, records.selectors)
}

/** Signs and stores an index head in the DHT (on this node and the closest peers to the key). */
export async function publishIndexHead (dht: KadDHT, privateKey: PrivateKey, head: IndexHead, options: AbortOptions = {}): Promise<Uint8Array> {
  const value = await createIndexHeadRecord(privateKey, head)
  const key = indexHeadKey(privateKey.publicKey)
  // run this node's own validator first: it refuses a rollback and remembers the new version,
  // since kad-dht stores our own puts without validating them
  await dht.validators[INDEX_HEAD_NAMESPACE]?.(key, value, options)
  let stored = 0
  let lastError: Error | undefined
  for await (const event of dht.put(key, value, options)) {
    if (event.name === 'PEER_RESPONSE') stored++
    if (event.name === 'QUERY_ERROR') lastError = event.error
  }
  if (stored === 0 && lastError !== undefined) {
    throw new SwarmpackError(DhtErrorCode.QUERY_FAILED, 'no peer stored the index head', { cause: lastError })
  }
  return value
}

/**
 * Looks up an indexer's head in the DHT, checks every record found and returns the highest
 * valid version. Forged, expired and oversized records are ignored.
 */
export async function resolveIndexHead (dht: KadDHT, indexer: PeerId | PublicKey | string, options: AbortOptions = {}): Promise<VerifiedIndexHead> {
  const key = indexHeadKey(indexer)
  let best: VerifiedIndexHead | undefined
  const consider = async (value: Uint8Array): Promise<void> => {
    try {
      const head = await verifyIndexHeadRecord(key, value)
      if (best === undefined || head.version > best.version) best = head
    } catch {}
  }
  try {
    for await (const event of dht.get(key, options) as AsyncIterable<QueryEvent>) {
      if (event.name === 'VALUE') await consider(event.value)
    }
  } catch (err) {
    if (best === undefined && options.signal?.aborted !== true) {
      throw new SwarmpackError(DhtErrorCode.RECORD_NOT_FOUND, `no index head found for ${toString(key)}`, { cause: err })
    }
  }
  if (best === undefined) throw new SwarmpackError(DhtErrorCode.RECORD_NOT_FOUND, `no index head found for ${toString(key)}`)
  return best
}
