/** Property tests: arbitrary mutations of signed bytes always end in a typed refusal, never a crash or a pass. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { SwarmpackError } from '@swarmpack/core'
import { PayloadType, decodeStrict, isValidName, isValidPattern, patternMatches, patternWithin, generateSigningKey, openEnvelope, openIndexHead, scanCborDepth, signEnvelope } from '../src/index.js'
import { rawManifestCid } from './helpers.js'

describe('trust: fuzzing', () => {
  it('a mutated head envelope is refused with an ERR_TRUST_ code', async () => {
    const key = await generateSigningKey()
    const head = await signEnvelope(key, PayloadType.INDEX_HEAD, { indexer: 'alpha', version: 3, index: rawManifestCid('x'), issued: 1, expires: 2 })
    assert.equal(openIndexHead(head.bytes).version, 3)
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.nat(head.bytes.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.option(fc.nat(head.bytes.length - 1)),
      (flips, cut) => {
        let bytes = head.bytes.slice()
        for (const [at, x] of flips) bytes[at] ^= x
        if (cut !== null) bytes = bytes.subarray(0, cut)
        try {
          openIndexHead(bytes)
        } catch (err) {
          return err instanceof SwarmpackError && err.code.startsWith('ERR_TRUST_')
        }
        return false // any change to signed bytes must be refused
      }
    ), { numRuns: 400 })
  })

  it('canonical dag-cbor values within the depth limit decode strictly; random bytes never crash', () => {
    const leaf = fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 8 }))
    const value = fc.letrec(tie => ({
      node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('node'), { maxKeys: 4 }))
    })).node
    fc.assert(fc.property(value, v => {
      const bytes = dagCbor.encode(v)
      assert.deepEqual(decodeStrict(bytes, { maxBytes: 1 << 20, what: 'v', maxDepth: 64 }), dagCbor.decode(bytes))
    }), { numRuns: 300 })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), bytes => {
      try { scanCborDepth(bytes, 16, 'random'); decodeStrict(bytes, { maxBytes: 1024, what: 'random' }) } catch (err) {
        return err instanceof SwarmpackError
      }
      return true
    }), { numRuns: 2000 })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), bytes => {
      try { openEnvelope(bytes, PayloadType.RELEASE) } catch (err) { return err instanceof SwarmpackError }
      return false
    }), { numRuns: 1000 })
  })

  it('pattern containment is sound: inner within outer never admits a name outer refuses', () => {
    const seg = fc.stringMatching(/^@?[ab*-]{1,4}$/)
    const pattern = fc.array(seg, { minLength: 1, maxLength: 2 }).map(p => p.join('/')).filter(isValidPattern)
    const name = fc.array(fc.stringMatching(/^[ab-]{1,5}$/), { minLength: 1, maxLength: 2 })
      .map(p => p.length === 2 ? `@${p[0]}/${p[1]}` : p[0]).filter(isValidName)
    fc.assert(fc.property(pattern, pattern, fc.array(name, { minLength: 1, maxLength: 20 }), (inner, outer, names) => {
      if (!patternWithin(inner, outer)) return true
      return names.every(n => !patternMatches(inner, n) || patternMatches(outer, n))
    }), { numRuns: 3000 })
  })
})
