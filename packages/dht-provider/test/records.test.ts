import '@swarmpack/core/polyfill'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { encodeCborBlock, isSwarmpackError, rawCid } from '@swarmpack/core'
import { IndexHeadMemory, MAX_INDEX_HEAD_RECORD_SIZE, createIndexHeadRecord, createIndexHeadValidator, indexHeadKey, indexHeadSelector, verifyIndexHeadRecord } from '../src/records.js'

const invalid = (e: unknown): boolean => isSwarmpackError(e, 'ERR_DHT_INVALID_RECORD')
const cid = (n: number): ReturnType<typeof rawCid> => rawCid(new Uint8Array([n]))

describe('index-head records', () => {
  it('round-trips and names the indexer from the key', async () => {
    const k = await generateKeyPair('Ed25519')
    const expiry = Date.now() + 60_000
    const bytes = await createIndexHeadRecord(k, { version: 7, indexCid: cid(7), expiry })
    const head = await verifyIndexHeadRecord(indexHeadKey(k.publicKey), bytes)
    assert.equal(head.version, 7)
    assert.ok(head.indexCid.equals(cid(7)))
    assert.equal(head.expiry, expiry)
    assert.ok(bytes.byteLength < 300)
  })

  it('refuses expired, tampered, oversized, non-cbor and wrong-key records', async () => {
    const k = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const key = indexHeadKey(k.publicKey)
    const expired = await createIndexHeadRecord(k, { version: 1, indexCid: cid(1), expiry: Date.now() - 1 })
    await assert.rejects(verifyIndexHeadRecord(key, expired), invalid)
    const good = await createIndexHeadRecord(k, { version: 1, indexCid: cid(1), expiry: Date.now() + 60_000 })
    const tampered = Uint8Array.from(good)
    tampered[tampered.length - 3] ^= 1
    await assert.rejects(verifyIndexHeadRecord(key, tampered), invalid)
    await assert.rejects(verifyIndexHeadRecord(indexHeadKey(other.publicKey), good), invalid)
    await assert.rejects(verifyIndexHeadRecord(key, new Uint8Array(MAX_INDEX_HEAD_RECORD_SIZE + 1)), invalid)
    await assert.rejects(verifyIndexHeadRecord(key, new Uint8Array([0xff, 0x00])), invalid)
    const noSig = encodeCborBlock({ v: 1, version: 1, indexCid: cid(1), expiry: Date.now() + 60_000 }).bytes
    await assert.rejects(verifyIndexHeadRecord(key, noSig), invalid)
    await assert.rejects(verifyIndexHeadRecord(new TextEncoder().encode('/swarmpack-head/not-a-peer'), good), invalid)
    await assert.rejects(createIndexHeadRecord(k, { version: -1, indexCid: cid(1), expiry: 1 }), invalid)
  })

  it('selector picks the highest version, skipping garbage', async () => {
    const k = await generateKeyPair('Ed25519')
    const expiry = Date.now() + 60_000
    const recs = await Promise.all([3, 9, 5].map(async v => createIndexHeadRecord(k, { version: v, indexCid: cid(v), expiry })))
    assert.equal(await indexHeadSelector(indexHeadKey(k.publicKey), [recs[0], new Uint8Array([1, 2]), recs[1], recs[2]]), 2)
  })

  it('validator memory refuses rollbacks and twin heads, accepts re-publish of the same head', async () => {
    const k = await generateKeyPair('Ed25519')
    const key = indexHeadKey(k.publicKey)
    const expiry = Date.now() + 60_000
    const validate = createIndexHeadValidator(new IndexHeadMemory())
    await validate(key, await createIndexHeadRecord(k, { version: 4, indexCid: cid(4), expiry }))
    await validate(key, await createIndexHeadRecord(k, { version: 4, indexCid: cid(4), expiry: expiry + 1000 }))
    await assert.rejects(async () => { await validate(key, await createIndexHeadRecord(k, { version: 3, indexCid: cid(3), expiry })) }, invalid)
    await assert.rejects(async () => { await validate(key, await createIndexHeadRecord(k, { version: 4, indexCid: cid(44), expiry })) }, invalid)
    await validate(key, await createIndexHeadRecord(k, { version: 5, indexCid: cid(5), expiry }))
  })
})
