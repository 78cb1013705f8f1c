/**
 * Index-head records in the DHT, generic over their format. An indexer puts its signed head under
 * `/swarmpack-head/<indexer key id>`; what a valid head is, and which of several wins, is decided
 * by an injected `HeadRecordFormat` (the node injects the trust package's verification), so this
 * package defines no head format of its own and imports nothing above core.
 *
 * kad-dht runs the validator on every record it stores or returns and the selector when peers
 * disagree. On top of the format, a node remembers the highest version it validated per key and
 * refuses a lower one or different bytes under the same version, so a stale re-publish cannot
 * overwrite a newer head it holds.
 */
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { SwarmpackError, isSwarmpackError, throwIfAborted } from '@swarmpack/core'
import { equals } from 'uint8arrays/equals'
import { fromString } from 'uint8arrays/from-string'
import { toString } from 'uint8arrays/to-string'
import { DhtErrorCode } from './errors.js'
import type { PeerId, PublicKey, AbortOptions } from '@libp2p/interface'
import type { KadDHT, QueryEvent, SelectFn, ValidateFn } from '@libp2p/kad-dht'

/** Key namespace; kad-dht picks the validator and selector by the first path segment. */
export const INDEX_HEAD_NAMESPACE = 'swarmpack-head'

/** What a format's validator learns from a valid record. */
export interface HeadRecordInfo {
  /** Strictly increasing per key. */
  version: number
}

/**
 * The head format, injected. `validate` fully checks a value under its key (signature by the key
 * the record key names, shape, size, expiry) and throws a typed error otherwise; `select` returns
 * the index of the best of several values (invalid ones must never win).
 */
export interface HeadRecordFormat {
  validate: (key: Uint8Array, value: Uint8Array, options?: AbortOptions) => HeadRecordInfo | Promise<HeadRecordInfo>
  select: (key: Uint8Array, values: Uint8Array[]) => number
}

function invalid (message: string, details: Record<string, unknown> = {}, cause?: unknown): SwarmpackError {
  return new SwarmpackError(DhtErrorCode.INVALID_RECORD, message, { details, ...(cause === undefined ? {} : { cause }) })
}

/** The DHT key for an indexer's head: `/swarmpack-head/<key id>` (the key id is its peer id string). */
export function indexHeadKey (indexer: PeerId | PublicKey | string): Uint8Array {
  // a PublicKey carries its raw bytes; a PeerId does not
  const id = typeof indexer === 'string' ? indexer : 'raw' in indexer ? peerIdFromPublicKey(indexer).toString() : indexer.toString()
  return fromString(`/${INDEX_HEAD_NAMESPACE}/${id}`)
}

/**
 * The key id a record key names; only ed25519 ids (which embed the public key) qualify, so a
 * record can be checked against its key with nothing else at hand. ERR_DHT_INVALID_RECORD otherwise.
 */
export function keyIdOfHeadKey (key: Uint8Array): string {
  const text = toString(key)
  const prefix = `/${INDEX_HEAD_NAMESPACE}/`
  if (!text.startsWith(prefix)) throw invalid(`record key is not in the ${INDEX_HEAD_NAMESPACE} namespace`)
  let peerId: PeerId
  try {
    peerId = peerIdFromString(text.slice(prefix.length))
  } catch (err) {
    throw invalid('record key does not name a key id', {}, err)
  }
  if (peerId.type !== 'Ed25519') throw invalid('index heads must be signed by an ed25519 key')
  return peerId.toString()
}

/**
 * The highest head version this node has validated per key. kad-dht stores whatever valid record
 * a peer PUTs, overwriting what it held; with this memory the validator refuses a lower version
 * (a rollback or a stale re-publish) and other bytes under the same version (two heads with one
 * version), so a node never serves an older head than one it has seen.
 */
export class HeadRecordMemory {
  private readonly heads = new Map<string, { version: number, value: Uint8Array }>()
  constructor (private readonly maxKeys = 10_000) {}

  /** Throws ERR_DHT_INVALID_RECORD if `value` goes back from what was seen; remembers it otherwise. */
  admit (key: Uint8Array, version: number, value: Uint8Array): void {
    const k = toString(key, 'base64')
    const seen = this.heads.get(k)
    if (seen !== undefined) {
      if (version < seen.version) throw invalid(`head version ${version} is older than ${seen.version} already seen`, { version, seen: seen.version, reason: 'rollback' })
      if (version === seen.version && !equals(value, seen.value)) throw invalid(`two different heads carry version ${version}`, { version, reason: 'equivocation' })
    }
    this.heads.delete(k)
    this.heads.set(k, { version, value: Uint8Array.from(value) })
    if (this.heads.size > this.maxKeys) this.heads.delete(this.heads.keys().next().value as string)
  }

  highest (key: Uint8Array): number | undefined {
    return this.heads.get(toString(key, 'base64'))?.version
  }
}

/** A kad-dht validator: the format's check, then this node's rollback memory. */
export function createHeadRecordValidator (format: HeadRecordFormat, memory: HeadRecordMemory): ValidateFn {
  return async (key, value, options) => {
    const { version } = await format.validate(key, value, options)
    memory.admit(key, version, value)
  }
}

/** A kad-dht selector from the format's. */
export function createHeadRecordSelector (format: HeadRecordFormat): SelectFn {
  return (key, records) => format.select(key, records)
}

/** Refuses every head record: a peer built without a head format neither stores nor serves heads. */
const refuseHeads: ValidateFn = () => {
  throw invalid('this peer has no index-head format configured')
}

export interface SwarmpackDhtRecords {
  validators: Record<string, ValidateFn>
  selectors: Record<string, SelectFn>
  memory: HeadRecordMemory
}

/**
 * Validators (with their own rollback memory) and selectors for one node's kad-dht. Without a
 * format the head namespace refuses every record.
 */
export function createSwarmpackDhtRecords (format?: HeadRecordFormat, memory = new HeadRecordMemory()): SwarmpackDhtRecords {
  if (format === undefined) return { validators: { [INDEX_HEAD_NAMESPACE]: refuseHeads }, selectors: { [INDEX_HEAD_NAMESPACE]: () => 0 }, memory }
  return {
    validators: { [INDEX_HEAD_NAMESPACE]: createHeadRecordValidator(format, memory) },
    selectors: { [INDEX_HEAD_NAMESPACE]: createHeadRecordSelector(format) },
    memory
  }
}

/** Adds the swarmpack validators and selectors to a DHT created elsewhere (a host's own node). */
export function registerSwarmpackRecords (dht: KadDHT, records: SwarmpackDhtRecords = createSwarmpackDhtRecords()): void {
  Object.assign(dht.validators, records.validators)
  Object.assign(dht.selectors, records.selectors)
}

export interface PutHeadResult {
  /** Remote peers that stored the record. */
  stored: number
}

/**
 * Stores a head record under `key` on this node and the closest peers. This node's own validator
 * runs first (kad-dht stores its own puts unchecked): it refuses an invalid record or a rollback
 * and remembers the new version. ERR_DHT_QUERY_FAILED when no peer stored it and the query erred.
 */
export async function putHeadRecord (dht: KadDHT, key: Uint8Array, value: Uint8Array, options: AbortOptions = {}): Promise<PutHeadResult> {
  throwIfAborted(options.signal)
  const validate = dht.validators[INDEX_HEAD_NAMESPACE]
  if (validate === undefined) throw invalid('the DHT has no index-head validator (registerSwarmpackRecords with a format)')
  await validate(key, value, options)
  let stored = 0
  let lastError: Error | undefined
  try {
    for await (const event of dht.put(key, value, options)) {
      if (event.name === 'PEER_RESPONSE') stored++
      if (event.name === 'QUERY_ERROR') lastError = event.error
    }
  } catch (err) {
    throwIfAborted(options.signal)
    lastError = err as Error
  }
  if (stored === 0 && lastError !== undefined) {
    throw new SwarmpackError(DhtErrorCode.QUERY_FAILED, `no peer stored the record ${toString(key)}`, { cause: lastError })
  }
  return { stored }
}

export interface HeadRecordHit {
  value: Uint8Array
  version: number
  /** The peer that answered with it (this node's own store when undefined). */
  from?: string
}

/**
 * Looks a key up in the DHT and returns every valid value found (each passed the format's
 * validator), highest version first. ERR_DHT_RECORD_NOT_FOUND when none is found; the validation
 * errors of refused values are in `details.refused`.
 */
export async function getHeadRecords (dht: KadDHT, key: Uint8Array, format: HeadRecordFormat, options: AbortOptions = {}): Promise<HeadRecordHit[]> {
  const hits: HeadRecordHit[] = []
  const refused: Array<{ from?: string, code?: string, message: string }> = []
  let queryError: unknown
  try {
    for await (const event of dht.get(key, options) as AsyncIterable<QueryEvent>) {
      if (event.name !== 'VALUE') continue
      const from = event.from?.toString()
      try {
        const { version } = await format.validate(key, event.value, options)
        if (!hits.some(h => equals(h.value, event.value))) hits.push({ value: event.value, version, ...(from !== undefined ? { from } : {}) })
      } catch (err) {
        refused.push({ ...(from !== undefined ? { from } : {}), code: isSwarmpackError(err) ? err.code : undefined, message: (err as Error).message })
      }
    }
  } catch (err) {
    throwIfAborted(options.signal)
    queryError = err
  }
  if (hits.length === 0) {
    throw new SwarmpackError(DhtErrorCode.RECORD_NOT_FOUND, `no valid record found for ${toString(key)}`, { details: { refused }, ...(queryError !== undefined ? { cause: queryError } : {}) })
  }
  return hits.sort((a, b) => b.version - a.version)
}
