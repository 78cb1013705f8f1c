/**
 * The Bitswap wire codec: round trips, protobuf details (negative int32, unknown fields), splitting
 * under the cap, CID prefixes, and byte-level agreement with Helia's own generated codec.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, it } from 'node:test'
import { IDENTITY_CODE, encodeCborBlock, rawCid } from '@swarmpack/core'
import * as Digest from 'multiformats/hashes/digest'
import fc from 'fast-check'
import { Uint8ArrayList } from 'uint8arraylist'
import { CID } from 'multiformats/cid'
import { cidOfPayload, cidPrefix, decodeMessage, encodeMessage, multihashKey, payloadKey, splitMessages } from '../src/bitswap/wire.js'
import { BlockPresenceType, WantType } from '../src/bitswap/pb/message.js'
import type { Message } from '../src/bitswap/pb/message.js'
import { randomBlocks } from './bitswap-helpers.js'

/** Helia's protons-generated codec (not exported by the package, so loaded by path). */
async function heliaCodec (): Promise<{ encode(m: unknown): Uint8Array, decode(b: Uint8Array): any }> {
  const require = createRequire(import.meta.url)
  const entry = require.resolve('@helia/bitswap', { paths: [process.cwd()] })
  const mod = await import(pathToFileURL(join(dirname(entry), 'pb', 'message.js')).href)
  return mod.BitswapMessage
}

const arbBytes = fc.uint8Array({ minLength: 0, maxLength: 64 })
const arbMessage: fc.Arbitrary<Message> = fc.record({
  wantlist: fc.option(fc.record({
    entries: fc.array(fc.record({
      block: fc.uint8Array({ minLength: 1, maxLength: 40 }),
      priority: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      cancel: fc.option(fc.boolean(), { nil: undefined }),
      wantType: fc.option(fc.constantFrom(WantType.WantBlock, WantType.WantHave), { nil: undefined }),
      sendDontHave: fc.option(fc.boolean(), { nil: undefined })
    }, { requiredKeys: ['block', 'priority'] }), { maxLength: 8 }),
    full: fc.option(fc.boolean(), { nil: undefined })
  }, { requiredKeys: ['entries'] }), { nil: undefined }),
  payload: fc.array(fc.record({ prefix: arbBytes, data: arbBytes }), { maxLength: 4 }),
  blockPresences: fc.array(fc.record({ cid: arbBytes, type: fc.constantFrom(BlockPresenceType.Have, BlockPresenceType.DontHave) }), { maxLength: 4 }),
  pendingBytes: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
}, { requiredKeys: ['payload', 'blockPresences', 'pendingBytes'] })

function normalize (m: Message): unknown {
  return JSON.parse(JSON.stringify(m, (_k, v) => v instanceof Uint8Array ? [...v] : v))
}

describe('bitswap wire format', () => {
  it('round-trips any message', () => {
    fc.assert(fc.property(arbMessage, (m) => {
      const decoded = decodeMessage(encodeMessage(m))
      assert.deepEqual(normalize(decoded), normalize(m))
    }), { numRuns: 300 })
  })

  it('writes the same bytes as Helia and reads what Helia writes', async () => {
    const helia = await heliaCodec()
    fc.assert(fc.property(arbMessage, (m) => {
      // Helia's field names: cid for the want, blocks for the payload, enums by name
      const theirs = {
        wantlist: m.wantlist === undefined
          ? undefined
          : {
              full: m.wantlist.full,
              entries: m.wantlist.entries.map(e => ({
                cid: e.block,
                priority: e.priority,
                cancel: e.cancel,
                wantType: e.wantType === undefined ? undefined : (e.wantType === WantType.WantHave ? 'WantHave' : 'WantBlock'),
                sendDontHave: e.sendDontHave
              }))
            },
        blocks: m.payload,
        blockPresences: m.blockPresences.map(p => ({ cid: p.cid, type: p.type === BlockPresenceType.Have ? 'HaveBlock' : 'DoNotHaveBlock' })),
        pendingBytes: m.pendingBytes
      }
      const ours = encodeMessage(m)
      assert.deepEqual(ours, helia.encode(theirs))
      assert.deepEqual(normalize(decodeMessage(helia.encode(theirs))), normalize(m))
    }), { numRuns: 200 })
  })

  it('skips unknown fields and rejects malformed input', () => {
    // field 9 (varint) and field 10 (bytes) before a presence
    const known = encodeMessage({ payload: [], blockPresences: [{ cid: new Uint8Array([1, 2]), type: BlockPresenceType.DontHave }], pendingBytes: 0 })
    const withUnknown = new Uint8Array([0x48, 0x05, 0x52, 0x02, 0xaa, 0xbb, ...known])
    assert.deepEqual(normalize(decodeMessage(withUnknown)), normalize(decodeMessage(known)))
    for (const bad of [[0x0a, 0x05, 0x01], [0x0b], [0x22, 0x02, 0x10, 0x07], [0x00, 0x01], [0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]) {
      assert.throws(() => decodeMessage(new Uint8Array(bad)), { code: 'ERR_BITSWAP_INVALID_MESSAGE' }, Buffer.from(bad).toString('hex'))
    }
  })

  it('refuses more entries than the limit', () => {
    const wants = Array.from({ length: 70_000 }, (_, i) => ({ block: new Uint8Array([i & 0xff, i >> 8]), priority: 1 }))
    const encoded = encodeMessage({ wantlist: { entries: wants }, payload: [], blockPresences: [], pendingBytes: 0 })
    assert.throws(() => decodeMessage(encoded), { code: 'ERR_BITSWAP_INVALID_MESSAGE' })
  })

  it('splits content into messages under the cap and keeps everything', () => {
    const blocks = randomBlocks(7, 700 * 1024)
    const wants = randomBlocks(5000, 4).map(b => ({ block: b.cid.bytes, priority: 3, wantType: WantType.WantHave, sendDontHave: true }))
    const presences = randomBlocks(3000, 4).map(b => ({ cid: b.cid.bytes, type: BlockPresenceType.Have }))
    const cap = 2 * 1024 * 1024
    const out = [...splitMessages({ blocks: blocks.map(b => ({ prefix: cidPrefix(b.cid), data: b.bytes })), wants, presences, full: true }, cap)]
    assert.ok(out.length >= 3)
    let nBlocks = 0; let nWants = 0; let nPresences = 0; let fulls = 0
    for (const bytes of out) {
      assert.ok(bytes.byteLength <= cap, `${bytes.byteLength} <= ${cap}`)
      const m = decodeMessage(bytes)
      nBlocks += m.payload.length
      nPresences += m.blockPresences.length
      nWants += m.wantlist?.entries.length ?? 0
      if (m.wantlist?.full === true) fulls++
    }
    assert.deepEqual([nBlocks, nWants, nPresences, fulls], [7, 5000, 3000, 1])
    assert.throws(() => [...splitMessages({ blocks: [{ prefix: new Uint8Array(4), data: new Uint8Array(3 * 1024 * 1024) }] }, cap)], { code: 'ERR_BITSWAP_MESSAGE_TOO_LARGE' })
  })

  it('rebuilds CIDs from prefix and data, and refuses what it cannot hash', () => {
    const raw = randomBlocks(1, 1000)[0]
    const cbor = encodeCborBlock({ hello: 'world' })
    for (const b of [raw, cbor]) {
      const prefix = cidPrefix(b.cid)
      assert.equal(cidOfPayload({ prefix, data: b.bytes })?.toString(), b.cid.toString())
    }
    // CIDv0 (dag-pb sha2-256), as old peers send
    const v0 = CID.createV0(rawCid(new Uint8Array([1, 2, 3])).multihash as never)
    assert.deepEqual(cidPrefix(v0), new Uint8Array([0, 0x70, 0x12, 32]))
    assert.equal(cidOfPayload({ prefix: cidPrefix(v0), data: new Uint8Array([1, 2, 3]) })?.toString(), v0.toString())
    // blake2b-256 (0xb220) is not something we hash; neither is a truncated prefix
    assert.equal(cidOfPayload({ prefix: new Uint8Array([1, 0x55, 0xa0, 0xe4, 0x02, 32]), data: raw.bytes }), undefined)
    assert.equal(cidOfPayload({ prefix: new Uint8Array([1, 0x55]), data: raw.bytes }), undefined)
    assert.equal(cidOfPayload({ prefix: new Uint8Array([1, 0x55, 0x12, 31]), data: raw.bytes }), undefined)
  })

  it('keys a received block by its multihash, as the CID asked for is keyed, without building a CID', () => {
    const raw = randomBlocks(1, 1000)[0]
    const cbor = encodeCborBlock({ hello: 'world' })
    for (const b of [raw, cbor]) assert.equal(payloadKey({ prefix: cidPrefix(b.cid), data: b.bytes }), multihashKey(b.cid))
    // CIDv0 and CIDv1 of the same bytes meet under one key
    const v0 = CID.createV0(raw.cid.multihash as never)
    assert.equal(multihashKey(v0), multihashKey(raw.cid))
    assert.equal(payloadKey({ prefix: cidPrefix(v0), data: raw.bytes }), multihashKey(raw.cid))
    // identity multihashes, also longer than one String.fromCharCode call takes
    for (const size of [3, 5000]) {
      const data = new Uint8Array(size).map((_, i) => i % 251)
      const cid = CID.createV1(0x55, Digest.create(IDENTITY_CODE, data))
      assert.equal(payloadKey({ prefix: cidPrefix(cid), data }), multihashKey(cid))
    }
    // different bytes, different keys; what cannot be hashed has none
    assert.notEqual(payloadKey({ prefix: cidPrefix(raw.cid), data: raw.bytes.slice(1) }), multihashKey(raw.cid))
    assert.equal(payloadKey({ prefix: new Uint8Array([1, 0x55, 0xa0, 0xe4, 0x02, 32]), data: raw.bytes }), undefined)
    assert.equal(payloadKey({ prefix: new Uint8Array([1, 0x55]), data: raw.bytes }), undefined)
    assert.equal(payloadKey({ prefix: new Uint8Array([0, 0x55, 0x12, 32]), data: raw.bytes }), undefined, 'a CIDv0 is dag-pb only')
  })

  it('frames a message with its length in the same buffer', () => {
    const m: Message = { payload: [{ prefix: new Uint8Array([1, 0x55, 0x12, 32]), data: new Uint8Array(300).fill(7) }], blockPresences: [], pendingBytes: 0 }
    const plain = encodeMessage(m)
    const framed = encodeMessage(m, { lengthPrefixed: true })
    // 300-odd bytes: a two-byte varint length, then the message itself
    assert.equal(framed.byteLength, plain.byteLength + 2)
    assert.equal((framed[0] & 0x7f) | (framed[1] << 7), plain.byteLength)
    assert.deepEqual(framed.subarray(2), plain)
    assert.deepEqual([...splitMessages({ blocks: m.payload }, undefined, { lengthPrefixed: true })], [framed])
  })

  it('decodes a message from the chunks a stream delivered as from one buffer, copying only what straddles them', () => {
    fc.assert(fc.property(arbMessage, fc.array(fc.nat(), { maxLength: 6 }), (m, cuts) => {
      const bytes = encodeMessage(m)
      const points = [...new Set(cuts.map(c => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
      const list = new Uint8ArrayList()
      let from = 0
      // socket chunks are Buffers
      for (const p of [...points, bytes.byteLength]) { list.append(Buffer.from(bytes.subarray(from, p))); from = p }
      const decoded = decodeMessage(list)
      assert.deepEqual(normalize(decoded), normalize(decodeMessage(bytes)))
      for (const b of decoded.payload) assert.equal(Object.getPrototypeOf(b.data), Uint8Array.prototype, 'plain Uint8Array views')
    }), { numRuns: 300 })
    // a block inside one chunk is a view of that chunk, not a copy
    const block = { prefix: new Uint8Array([1, 0x55, 0x12, 32]), data: new Uint8Array(1000).fill(9) }
    const one = encodeMessage({ payload: [block, block], blockPresences: [], pendingBytes: 0 })
    const half = one.byteLength >> 1
    const first = one.slice(0, half)
    const list = new Uint8ArrayList(first, one.slice(half))
    const [a, b] = decodeMessage(list).payload
    assert.equal(a.data.buffer, first.buffer)
    assert.deepEqual(b.data, block.data)
    // malformed input still raises the typed error
    assert.throws(() => decodeMessage(new Uint8ArrayList(one.subarray(0, 10), one.subarray(11, 20))), { code: 'ERR_BITSWAP_INVALID_MESSAGE' })
  })
})
