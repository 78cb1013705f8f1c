import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CID } from 'multiformats/cid'
import { CoreErrorCode, MAX_BLOCK_SIZE, decodeCbor, encodeCborBlock, isSwarmpackError, parseCid, rawCid, verifyBlock } from '@swarmpack/core'

test('raw blocks verify against their CID and reject any other bytes', () => {
  const bytes = new TextEncoder().encode('hello swarm')
  const cid = rawCid(bytes)
  assert.equal(cid.version, 1)
  verifyBlock(cid, bytes)
  const tampered = bytes.slice(); tampered[0] ^= 1
  assert.throws(() => verifyBlock(cid, tampered), (e: unknown) => isSwarmpackError(e, CoreErrorCode.BLOCK_MISMATCH))
})

test('dag-cbor encoding is deterministic and round-trips', () => {
  const a = encodeCborBlock({ b: 1, a: [1, 2, 3] })
  const b = encodeCborBlock({ a: [1, 2, 3], b: 1 })
  assert.equal(a.cid.toString(), b.cid.toString())
  assert.deepEqual(decodeCbor(a.bytes), { a: [1, 2, 3], b: 1 })
  verifyBlock(a.cid, a.bytes)
})

test('blocks over 1 MiB are refused', () => {
  assert.throws(() => rawCid(new Uint8Array(MAX_BLOCK_SIZE + 1)), (e: unknown) => isSwarmpackError(e, CoreErrorCode.BLOCK_TOO_LARGE))
})

test('identity CIDs (the bafkqaaa probe) verify by content', () => {
  verifyBlock(CID.parse('bafkqaaa'), new Uint8Array(0))
  assert.throws(() => verifyBlock(CID.parse('bafkqaaa'), new Uint8Array(1)), (e: unknown) => isSwarmpackError(e, CoreErrorCode.BLOCK_MISMATCH))
})

test('CIDv0 and unknown codecs are unsupported; bad strings are typed errors', () => {
  const v0 = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
  assert.throws(() => verifyBlock(v0, new Uint8Array(0)), (e: unknown) => isSwarmpackError(e, CoreErrorCode.UNSUPPORTED_CID))
  assert.throws(() => parseCid('not-a-cid'), (e: unknown) => isSwarmpackError(e, CoreErrorCode.INVALID_ARGUMENT))
})
