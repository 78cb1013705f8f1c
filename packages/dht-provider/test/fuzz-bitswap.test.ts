/**
 * Fuzzing the Bitswap wire decoders a peer runs on every incoming frame: the protobuf message,
 * the CID of each payload block (prefix + data) and of each want and presence. Every input must
 * end in a value (or `undefined` for a bad CID) or a SwarmpackError with an ERR_ code, within 1 s
 * of CPU. SWARMPACK_FUZZ_RUNS sets the inputs per decoder (1,000 here; 100,000 in bench/fuzz).
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeCborBlock, rawCid } from '@swarmpack/core'
import fc from 'fast-check'
import { expectTypedOutcomeSync as typed, mutatedBytes } from '@swarmpack/core/fuzzing'
import { BlockPresenceType, WantType } from '../src/bitswap/pb/message.js'
import { cidOfPayload, decodeCid, decodeMessage, encodeMessage } from '../src/bitswap/wire.js'

const RUNS = Number(process.env.SWARMPACK_FUZZ_RUNS ?? 1000)


/** Everything the network layer does with one frame. */
function handleFrame (bytes: Uint8Array): void {
  const m = decodeMessage(bytes)
  for (const b of m.payload) cidOfPayload(b)
  for (const e of m.wantlist?.entries ?? []) decodeCid(e.block)
  for (const p of m.blockPresences) decodeCid(p.cid)
}

const raw = rawCid(new Uint8Array([1, 2, 3]))
const cbor = encodeCborBlock({ a: 1 })
const seed = encodeMessage({
  wantlist: { entries: [{ block: raw.bytes, priority: 1, wantType: WantType.WantBlock, sendDontHave: true }, { block: cbor.cid.bytes, priority: 2, cancel: true }], full: false },
  payload: [{ prefix: new Uint8Array([1, 0x55, 0x12, 0x20]), data: new Uint8Array([1, 2, 3]) }, { prefix: new Uint8Array([1, 0x71, 0x12, 0x20]), data: cbor.bytes }],
  blockPresences: [{ cid: raw.bytes, type: BlockPresenceType.DontHave }],
  pendingBytes: 7
})

const mutated = (seed: Uint8Array): fc.Arbitrary<Uint8Array> => mutatedBytes(fc, seed)

describe('fuzz: bitswap wire', () => {
  it('the seed frame decodes', () => {
    const m = decodeMessage(seed)
    assert.equal(m.payload.length, 2)
    assert.equal(cidOfPayload(m.payload[0])?.toString(), raw.toString())
  })

  it(`mutated frames (${RUNS} inputs)`, () => {
    fc.assert(fc.property(mutated(seed), b => { typed('frame', () => handleFrame(b)) }), { numRuns: RUNS })
  })

  it(`random frames (${RUNS} inputs)`, () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1024 }), b => { typed('frame', () => handleFrame(b)) }), { numRuns: RUNS })
  })

  it(`structured messages with arbitrary field values (${RUNS} inputs)`, () => {
    const bytes = fc.uint8Array({ maxLength: 48 })
    const message = fc.record({
      wantlist: fc.option(fc.record({ entries: fc.array(fc.record({ block: bytes, priority: fc.integer(), cancel: fc.boolean(), wantType: fc.constantFrom(WantType.WantBlock, WantType.WantHave), sendDontHave: fc.boolean() }), { maxLength: 8 }), full: fc.boolean() }), { nil: undefined }),
      payload: fc.array(fc.record({ prefix: bytes, data: bytes }), { maxLength: 6 }),
      blockPresences: fc.array(fc.record({ cid: bytes, type: fc.constantFrom(BlockPresenceType.Have, BlockPresenceType.DontHave) }), { maxLength: 6 }),
      pendingBytes: fc.integer()
    })
    fc.assert(fc.property(message, m => { typed('message', () => handleFrame(encodeMessage(m))) }), { numRuns: RUNS })
  })
})
