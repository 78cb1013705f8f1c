/**
 * Fuzzing every trust decoder of bytes from the network or disk: signed envelopes of each kind
 * (release, delegation, attestation, index, index head) and index shards, from mutations of real
 * signed objects, arbitrary dag-cbor values and random bytes. Each input must end in a verified
 * object or a SwarmpackError with an ERR_ code within 1 s of CPU. SWARMPACK_FUZZ_RUNS sets the
 * inputs per decoder (1,000 here; bench/fuzz.bench.ts runs 100,000).
 */
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { expectTypedOutcomeSync as typed, mutatedBytes } from '@swarmpack/core/fuzzing'
import {
  PayloadType, buildIndex, generateSigningKey, issueDelegation, keyIdOf, openAttestation, openDelegation, openEnvelope,
  openIndexHead, openIndexRoot, openRelease, openShard, signAttestation, signRelease, type IndexSlot
} from '../src/index.js'
import { DAY, T0, rawManifestCid } from './helpers.js'

const RUNS = Number(process.env.SWARMPACK_FUZZ_RUNS ?? 1000)


const mutated = (seed: Uint8Array): fc.Arbitrary<Uint8Array> => mutatedBytes(fc, seed)

const cborValue = fc.letrec(tie => ({
  node: fc.oneof({ depthSize: 'small' },
    fc.integer(), fc.string({ maxLength: 16 }), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 70 }),
    fc.constant(rawManifestCid('x')),
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('payloadType', 'payload', 'signature', 'signer', 'type', 'bucket', 'of', 'entries', 'name', 'version', 'x'), tie('node'), { maxKeys: 5 }))
})).node

describe('fuzz: trust envelopes and shards', () => {
  const seeds: Record<string, { bytes: Uint8Array, open: (b: Uint8Array) => unknown }> = {}
  before(async () => {
    const key = await generateSigningKey()
    const manifest = rawManifestCid('m')
    const release = await signRelease(key, { name: 'fuzz-pkg', version: '1.0.0', variants: { any: { manifest, size: 10 } }, dependencies: { dep: '^1.0.0' } })
    const delegation = await issueDelegation(key, { audience: keyIdOf(await generateSigningKey()), scope: ['fuzz-*'], notBefore: T0, expires: T0 + DAY })
    const attestation = await signAttestation(key, { subject: { name: 'fuzz-pkg', version: '1.0.0', manifest }, kind: 'rebuilt', issued: T0, expires: T0 + DAY })
    const entries = new Map<string, Map<string, IndexSlot>>()
    for (const n of ['a', 'b', 'c', 'fuzz-pkg', 'zeta']) entries.set(n, new Map([['1.0.0', { release: release.cid, size: release.bytes.byteLength, variants: { any: { manifest, size: 10 } }, dependencies: {} }]]))
    const built = await buildIndex(key, { indexer: 'fuzz', version: 3, issued: T0, expires: T0 + DAY, entries, shards: 2 })
    const shard = built.shards[0]
    const shardOf = dagCbor.decode<{ bucket: number, of: number }>(shard.bytes)
    seeds.release = { bytes: release.bytes, open: openRelease }
    seeds.delegation = { bytes: delegation.bytes, open: openDelegation }
    seeds.attestation = { bytes: attestation.bytes, open: openAttestation }
    seeds.index = { bytes: built.index.bytes, open: openIndexRoot }
    seeds.head = { bytes: built.head.bytes, open: openIndexHead }
    seeds.shard = { bytes: shard.bytes, open: b => openShard(b, shardOf.bucket, shardOf.of) }
  })

  it('the seeds open', () => {
    for (const [kind, s] of Object.entries(seeds)) assert.doesNotThrow(() => s.open(s.bytes), kind)
  })

  for (const kind of ['release', 'delegation', 'attestation', 'index', 'head', 'shard']) {
    it(`${kind}: mutated (${RUNS} inputs), arbitrary dag-cbor and random bytes (${RUNS} each)`, () => {
      const s = seeds[kind]
      fc.assert(fc.property(mutated(s.bytes), b => { typed(kind, () => s.open(b)) }), { numRuns: RUNS })
      fc.assert(fc.property(cborValue, v => { typed(kind, () => s.open(dagCbor.encode(v))) }), { numRuns: RUNS })
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), b => { typed(kind, () => s.open(b)) }), { numRuns: RUNS })
    })
  }

  it(`an envelope of one kind opened as another (${RUNS} inputs)`, () => {
    const kinds = Object.values(PayloadType)
    fc.assert(fc.property(fc.constantFrom(...Object.keys(seeds)), fc.constantFrom(...kinds), (k, as) => {
      typed('cross', () => openEnvelope(seeds[k].bytes, as))
    }), { numRuns: RUNS })
  })
})
