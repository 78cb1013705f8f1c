/**
 * Fuzzing the decoders core runs on untrusted bytes: dag-cbor manifests (root, pages, chunk lists)
 * and block links. Every input must end in a value or a SwarmpackError with an ERR_ code, using at
 * most 1 s of CPU; nothing else may escape. SWARMPACK_FUZZ_RUNS sets the inputs per decoder
 * (1,000 here; bench/fuzz.bench.ts runs 100,000).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { expectTypedOutcome as typed, mutatedBytes } from '../src/fuzzing.js'
import { CID } from 'multiformats/cid'
import { SwarmpackError, blockLinks, createManifest, decodeManifest, encodeCborBlock, encodeManifest, rawCid, type Block } from '../src/index.js'

const RUNS = Number(process.env.SWARMPACK_FUZZ_RUNS ?? 1000)


const mutated = (seed: Uint8Array): fc.Arbitrary<Uint8Array> => mutatedBytes(fc, seed)

function manifestOf (files: number): { root: Block, blocks: Block[] } {
  const chunk = rawCid(new Uint8Array([1, 2, 3]))
  const m = createManifest({ name: 'fuzz-pkg', version: '1.2.3' }, Array.from({ length: files }, (_, i) => ({
    type: 'file' as const, path: `lib/f${i}.js`, mode: 0o644, size: 3, chunks: [[chunk, 3] as [CID, number]]
  })))
  return encodeManifest(m)
}

/** Decodes a root block whose bytes are `bytes` (under their own CID, so the hash check passes). */
async function decodeRoot (bytes: Uint8Array, others: Block[] = []): Promise<void> {
  const root = CID.createV1(dagCbor.code, (await import('multiformats/hashes/sha2')).sha256.digest(bytes) as never)
  const blocks = new Map(others.map(b => [b.cid.toString(), b.bytes]))
  blocks.set(root.toString(), bytes)
  await decodeManifest(root, {
    get: async (cid) => {
      const b = blocks.get(cid.toString())
      if (b === undefined) throw new SwarmpackError('ERR_NOT_FOUND', `no block ${cid.toString()}`)
      return b
    }
  })
}

const cborValue = fc.letrec(tie => ({
  node: fc.oneof({ depthSize: 'small' },
    fc.integer(), fc.string({ maxLength: 20 }), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 16 }),
    fc.constant(rawCid(new Uint8Array([1]))),
    fc.array(tie('node'), { maxLength: 5 }),
    fc.dictionary(fc.constantFrom('name', 'version', 'entries', 'files', 'path', 'mode', 'size', 'chunks', 'cid', 'type', 'totalSize', 'pages', 'format', 'x'), tie('node'), { maxKeys: 6 }))
})).node

describe('fuzz: manifests', () => {
  it('inputs that found bugs (kept as fixtures)', async () => {
    // blockLinks threw cborg's untyped error for bytes that hash to a dag-cbor CID but are not
    // dag-cbor (empty, truncated); the dht and http providers call it on every fetched block
    for (const hex of ['', 'a1', 'a16161', '9f']) {
      const b = Uint8Array.from(Buffer.from(hex, 'hex'))
      assert.throws(() => blockLinks(CID.createV1(dagCbor.code, rawCid(b).multihash), b), (err: SwarmpackError) => err.code === 'ERR_INVALID_MANIFEST')
    }
  })

  it('valid seeds decode (the mutations start from real encodings)', async () => {
    const small = manifestOf(2)
    await decodeRoot(small.root.bytes, small.blocks)
    const paged = manifestOf(3000)
    assert.ok(paged.blocks.length > 1, 'a paged manifest')
    await decodeRoot(paged.root.bytes, paged.blocks)
  })

  it(`mutated manifest roots (${RUNS} inputs) end in a manifest or a typed error`, async () => {
    const seed = manifestOf(3)
    await fc.assert(fc.asyncProperty(mutated(seed.root.bytes), async b => { await typed('manifest', async () => decodeRoot(b, seed.blocks)) }), { numRuns: RUNS })
  })

  it(`mutated manifest pages (${RUNS} inputs) end in a manifest or a typed error`, async () => {
    const seed = manifestOf(1500)
    const page = seed.blocks[0]
    await fc.assert(fc.asyncProperty(mutated(page.bytes), async b => {
      // the page is replaced under its CID: the hash check must refuse it, or it is the same bytes
      const others = seed.blocks.map(x => x === page ? { cid: page.cid, bytes: b } : x)
      await typed('manifest page', async () => decodeRoot(seed.root.bytes, others))
    }), { numRuns: RUNS })
  })

  it(`arbitrary dag-cbor values as manifests (${RUNS} inputs)`, async () => {
    await fc.assert(fc.asyncProperty(cborValue, async v => {
      const block = encodeCborBlock(v)
      await typed('cbor manifest', async () => decodeRoot(block.bytes))
    }), { numRuns: RUNS })
  })

  it(`random bytes as manifests and in blockLinks (${RUNS} inputs)`, async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async b => {
      await typed('random manifest', async () => decodeRoot(b))
      await typed('blockLinks', () => blockLinks(CID.createV1(dagCbor.code, rawCid(b).multihash), b))
    }), { numRuns: RUNS })
  })
})
