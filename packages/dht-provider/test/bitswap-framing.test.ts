/**
 * The Bitswap frame-length reader: the same frames as the library's varint reader for any way a
 * stream splits the bytes, one shared error (no stack capture) while a prefix is incomplete, and
 * overlong or oversized prefixes rejected.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import fc from 'fast-check'
import { varint } from 'multiformats'
import { Uint8ArrayList } from 'uint8arraylist'
import { frameLength } from '../src/bitswap/framing.js'

function framed (payloads: Uint8Array[]): Uint8Array {
  const parts: number[] = []
  for (const p of payloads) parts.push(...varint.encodeTo(p.byteLength, new Uint8Array(varint.encodingLength(p.byteLength))), ...p)
  return Uint8Array.from(parts)
}

/** Feeds `bytes` to a decoder in chunks cut at `cuts`, returning every frame it yields. */
function decodeAll (decoder: LengthPrefixedDecoder, bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  const points = [...new Set(cuts.map(c => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
  let from = 0
  for (const to of [...points, bytes.byteLength]) {
    if (to <= from) continue
    for (const frame of decoder.decode(bytes.subarray(from, to))) out.push(frame.subarray())
    from = to
  }
  return out
}

describe('bitswap framing', () => {
  it('yields the frames the library reader yields, however the stream splits them', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(2000), { maxLength: 12 }),
      (payloads, cuts) => {
        const bytes = framed(payloads)
        const ours = decodeAll(new LengthPrefixedDecoder({ lengthDecoder: frameLength }), bytes, cuts)
        const theirs = decodeAll(new LengthPrefixedDecoder(), bytes, cuts)
        assert.deepEqual(ours, payloads)
        assert.deepEqual(ours, theirs)
      }), { numRuns: 300 })
  })

  it('reads a prefix split across chunks, and throws one shared RangeError while it is incomplete', () => {
    const list = new Uint8ArrayList()
    let first: unknown
    try { frameLength(list) } catch (err) { first = err }
    assert.ok(first instanceof RangeError, 'an empty buffer: not complete yet')
    list.append(Uint8Array.of(0xac)) // 300 = 0xac 0x02, first byte only
    let second: unknown
    try { frameLength(list) } catch (err) { second = err }
    assert.equal(second, first, 'the same instance, so no stack is captured per incomplete read')
    list.append(Uint8Array.of(0x02, 0xff))
    assert.equal(frameLength(list), 300)
  })

  it('rejects an overlong prefix and a length over the cap', () => {
    const overlong = new LengthPrefixedDecoder({ lengthDecoder: frameLength })
    assert.throws(() => [...overlong.decode(new Uint8Array(9).fill(0xff))], (err: Error) => !(err instanceof RangeError) && /length/i.test(err.message))
    const capped = new LengthPrefixedDecoder({ lengthDecoder: frameLength, maxDataLength: 1024 })
    assert.throws(() => [...capped.decode(framed([new Uint8Array(1025)]))], /length/i)
    // a prefix that is still arriving is not an error
    const waiting = new LengthPrefixedDecoder({ lengthDecoder: frameLength })
    assert.deepEqual([...waiting.decode(Uint8Array.of(0x80, 0x80))], [])
  })
})
