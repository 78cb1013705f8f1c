/**
 * Bitswap 1.2.0 wire format helpers: CID prefixes, turning a received payload block back into
 * its CID, decoding with limits, and splitting outgoing content into messages under the cap.
 * Framing (one unsigned-varint length before each protobuf message) lives in network.ts.
 */
import { SwarmpackError, IDENTITY_CODE, SHA2_256_CODE, MAX_BLOCK_SIZE, sha256Multihash, sha256Of } from '@swarmpack/core'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { MAX_MESSAGE_SIZE } from './constants.js'
import { BitswapErrorCode } from './errors.js'
import { BlockPresenceType, WantType, decodeMessage as decodeProtobuf, encodeMessage, encodedSize } from './pb/message.js'
import type { Block, BlockPresence, ChunkedBytes, Message, Wantlist, WantlistEntry } from './pb/message.js'

export { WantType, BlockPresenceType, encodeMessage }
export type { Block, BlockPresence, ChunkedBytes, Message, Wantlist, WantlistEntry }

/** Upper bound on entries per decoded message: far more than fit a real 2 MiB message of CIDs. */
const MAX_ENTRIES_PER_MESSAGE = 65_536

/** The CID prefix Bitswap sends with each block: version, codec, multihash code, digest length. */
export function cidPrefix (cid: CID): Uint8Array {
  const fields = [cid.version, cid.code, cid.multihash.code, cid.multihash.size]
  const out = new Uint8Array(fields.reduce((n, f) => n + varint.encodingLength(f), 0))
  let offset = 0
  for (const f of fields) {
    varint.encodeTo(f, out, offset)
    offset += varint.encodingLength(f)
  }
  return out
}

/** A payload block's CID prefix, read; undefined when malformed. */
interface Prefix { version: number, codec: number, hashCode: number, digestLength: number }

function readPrefix (prefix: Uint8Array): Prefix | undefined {
  try {
    let offset = 0
    const next = (): number => {
      const [value, length] = varint.decode(prefix, offset)
      offset += length
      return value
    }
    const p = { version: next(), codec: next(), hashCode: next(), digestLength: next() }
    return offset === prefix.byteLength ? p : undefined
  } catch {
    return undefined
  }
}

/** Whether a CID of this version and codec can be built over a `hashCode` multihash. */
function validVersion (p: Prefix): boolean {
  return p.version === 1 || (p.version === 0 && p.codec === 0x70 && p.hashCode === SHA2_256_CODE)
}

/** Longest run of bytes handed to String.fromCharCode at once (its arguments live on the stack). */
const KEY_CHUNK = 4096

/**
 * Bytes as a one-byte string, for a Map key. Never reads `.buffer`: on the small typed arrays
 * multiformats makes for multihashes, that alone costs microseconds (V8 must materialize an
 * ArrayBuffer for an on-heap array), and keys are made several times per block on both sides.
 */
function bytesKey (bytes: Uint8Array): string {
  if (bytes.byteLength <= KEY_CHUNK) return String.fromCharCode.apply(null, bytes as unknown as number[])
  let out = ''
  for (let i = 0; i < bytes.byteLength; i += KEY_CHUNK) out += String.fromCharCode.apply(null, bytes.subarray(i, i + KEY_CHUNK) as unknown as number[])
  return out
}

/** Ledger and want keys: the multihash bytes (as a string), so a CIDv0 and a CIDv1 of the same bytes meet. */
export function multihashKey (cid: CID): string {
  return bytesKey(cid.multihash.bytes)
}

/** `multihashKey` of the multihash with this code and digest, without building it. */
export function multihashKeyOf (code: number, digest: Uint8Array): string {
  const head = new Uint8Array(varint.encodingLength(code) + varint.encodingLength(digest.byteLength))
  varint.encodeTo(code, head, 0)
  varint.encodeTo(digest.byteLength, head, varint.encodingLength(code))
  return bytesKey(head) + bytesKey(digest)
}

/**
 * The want key (`multihashKey`) of a received block, found by hashing its data once, without
 * building a CID: the receive path matches the key to a want and then verifies the data against
 * the CID asked for (verifyBlock reuses this hash: core remembers it). Undefined for prefixes we
 * cannot hash (only sha2-256 and identity) or that are malformed, and for oversized data.
 */
export function payloadKey (block: Block): string | undefined {
  const p = readPrefix(block.prefix)
  if (p === undefined || !validVersion(p) || block.data.byteLength > MAX_BLOCK_SIZE) return undefined
  if (p.hashCode === SHA2_256_CODE && p.digestLength === 32) return multihashKeyOf(SHA2_256_CODE, sha256Of(block.data))
  if (p.hashCode === IDENTITY_CODE && p.digestLength === block.data.byteLength) return multihashKeyOf(IDENTITY_CODE, block.data)
  return undefined
}

/**
 * Rebuilds the CID of a received block from its prefix by hashing the data. The result is, by
 * construction, the CID the bytes answer to; callers match it to what they asked for and then
 * verify against the wanted CID. Returns undefined for prefixes we cannot hash (only sha2-256 and
 * identity are supported) or that are malformed.
 */
export function cidOfPayload (block: Block): CID | undefined {
  const p = readPrefix(block.prefix)
  if (p === undefined || !validVersion(p) || block.data.byteLength > MAX_BLOCK_SIZE) return undefined
  let digest
  if (p.hashCode === SHA2_256_CODE && p.digestLength === 32) {
    // through core, which remembers the digest: verifyBlock and the store's put reuse it (hash once)
    digest = sha256Multihash(block.data)
  } else if (p.hashCode === IDENTITY_CODE && p.digestLength === block.data.byteLength) {
    digest = Digest.create(IDENTITY_CODE, block.data)
  } else {
    return undefined
  }
  try {
    return p.version === 0 ? CID.createV0(digest as never) : CID.createV1(p.codec, digest)
  } catch {
    return undefined
  }
}

/** Decodes one framed message; malformed protobuf or absurd entry counts raise INVALID_MESSAGE. */
export function decodeMessage (bytes: Uint8Array | ChunkedBytes): Message {
  try {
    return decodeProtobuf(bytes, { maxEntries: MAX_ENTRIES_PER_MESSAGE })
  } catch (err) {
    throw new SwarmpackError(BitswapErrorCode.INVALID_MESSAGE, 'malformed bitswap message', { cause: err })
  }
}

/** Parses a CID sent in a want or presence; undefined if it is not a valid CID. */
export function decodeCid (bytes: Uint8Array): CID | undefined {
  try {
    return CID.decode(bytes)
  } catch {
    return undefined
  }
}

/** What one outgoing batch holds before it is split into messages. */
export interface OutgoingContent {
  wants?: WantlistEntry[]
  full?: boolean
  blocks?: Block[]
  presences?: BlockPresence[]
}

/**
 * Splits content into encoded messages of at most `maxSize` bytes each (blocks first, then
 * presences, then wants). A single block that cannot fit raises MESSAGE_TOO_LARGE. When the
 * content is split, `full` is kept only on the first message so that the receiver replaces its
 * view once and adds the rest. `lengthPrefixed`: each comes framed, ready for a stream (the
 * varint length before the message, in one buffer).
 */
export function * splitMessages (content: OutgoingContent, maxSize: number = MAX_MESSAGE_SIZE, options: { lengthPrefixed?: boolean } = {}): Generator<Uint8Array> {
  const blocks = content.blocks ?? []
  const presences = content.presences ?? []
  const wants = content.wants ?? []
  const overhead = encodedSize.overhead
  let bi = 0
  let pi = 0
  let wi = 0
  let first = true
  while (first || bi < blocks.length || pi < presences.length || wi < wants.length) {
    const msg: Message = { payload: [], blockPresences: [], pendingBytes: 0 }
    const entries: WantlistEntry[] = []
    let size = overhead
    while (bi < blocks.length) {
      const s = encodedSize.block(blocks[bi])
      if (s + overhead > maxSize) {
        throw new SwarmpackError(BitswapErrorCode.MESSAGE_TOO_LARGE, `block of ${blocks[bi].data.byteLength} bytes does not fit a ${maxSize} byte message`)
      }
      if (size + s > maxSize) break
      msg.payload.push(blocks[bi++])
      size += s
    }
    while (pi < presences.length) {
      const s = encodedSize.presence(presences[pi])
      if (size + s > maxSize) break
      msg.blockPresences.push(presences[pi++])
      size += s
    }
    while (wi < wants.length) {
      const s = encodedSize.entry(wants[wi])
      if (size + s > maxSize) break
      entries.push(wants[wi++])
      size += s
    }
    if (entries.length > 0 || (first && content.full === true)) {
      msg.wantlist = { entries, full: first && content.full === true }
    }
    first = false
    yield encodeMessage(msg, options)
  }
}
