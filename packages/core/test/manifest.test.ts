import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import {
  CoreErrorCode, MAX_BLOCK_SIZE, MANIFEST_FORMAT, createManifest, decodeManifest, encodeCborBlock, encodeManifest, isSwarmpackError,
  listManifestCids, rawCid, scanCbor
} from '@swarmpack/core'
import type { Block, ChunkRef, Manifest, ManifestEntry } from '@swarmpack/core'
import { loadManifest, loadManifestPacked } from '../src/manifest/codec.js'
import { ChunkList } from '../src/package/hash.js'

/** A BlockGetter over a Map, as a Provider would be. */
function mapSource (blocks: Block[]): { get: (cid: CID) => Promise<Uint8Array>, map: Map<string, Uint8Array> } {
  const map = new Map(blocks.map(b => [b.cid.toString(), b.bytes]))
  return {
    map,
    async get (cid: CID) {
      const b = map.get(cid.toString())
      if (b === undefined) throw new Error('missing ' + cid.toString())
      return b
    }
  }
}

function chunk (seed: number, size = 1000): ChunkRef {
  const b = new Uint8Array(8); new DataView(b.buffer).setUint32(0, seed)
  return [rawCid(b), size]
}

const meta = {
  name: '@demo/tool',
  version: '1.2.3',
  description: 'a demo',
  categories: ['cli'],
  tags: ['demo', 'test'],
  dependencies: { 'left-pad': '^1.0.0' },
  optionalDependencies: { fsevents: '*' },
  platform: 'linux-x64',
  variant: 'musl',
  entry: 'bin/tool'
}

function small (): Manifest {
  const entries: ManifestEntry[] = [
    { type: 'dir', path: 'bin', mode: 0o755 },
    { type: 'file', path: 'bin/tool', mode: 0o755, size: 1500, chunks: [chunk(1), chunk(2, 500)] },
    { type: 'file', path: 'empty', mode: 0o644, size: 0, chunks: [] },
    { type: 'symlink', path: 'link', target: 'bin/tool' }
  ]
  return createManifest(meta, entries)
}

const code = (c: string) => (e: unknown) => isSwarmpackError(e, c)

test('a manifest round-trips through one dag-cbor block, deterministically', async () => {
  const m = small()
  const enc = encodeManifest(m)
  assert.equal(enc.blocks.length, 1)
  assert.equal(enc.root.cid.code, 0x71)
  assert.equal(encodeManifest(small()).root.cid.toString(), enc.root.cid.toString())
  const back = await decodeManifest(enc.root.cid, mapSource(enc.blocks))
  assert.deepEqual(back, m)
  assert.equal(back.totalSize, 1500)
  const cids = await listManifestCids(enc.root.cid, mapSource(enc.blocks))
  assert.deepEqual(cids.map(String), [enc.root.cid, chunk(1)[0], chunk(2)[0]].map(String))
})

test('a manifest larger than one block is split into linked pages and round-trips', async () => {
  const entries: ManifestEntry[] = []
  for (let i = 0; i < 30000; i++) entries.push({ type: 'file', path: `dir/file-${String(i).padStart(6, '0')}.js`, mode: 0o644, size: 1000, chunks: [chunk(i)] })
  // One file over the inline chunk limit goes to chunk-list blocks.
  const big: ChunkRef[] = []
  for (let i = 0; i < 20000; i++) big.push(chunk(100000 + i, 65536))
  entries.push({ type: 'file', path: 'zz-big.bin', mode: 0o644, size: 20000 * 65536, chunks: big })
  const m = createManifest({ name: 'many', version: '1.0.0' }, [{ type: 'dir', path: 'dir', mode: 0o755 }, ...entries])
  const enc = encodeManifest(m)
  assert.ok(enc.blocks.length > 3, `${enc.blocks.length} blocks`)
  for (const b of enc.blocks) assert.ok(b.bytes.length <= MAX_BLOCK_SIZE)
  const back = await decodeManifest(enc.root.cid, mapSource(enc.blocks))
  assert.deepEqual(back, m)
  const cids = await listManifestCids(enc.root.cid, mapSource(enc.blocks))
  assert.equal(cids.length, enc.blocks.length + 30000 + 20000)
  assert.equal(cids[0].toString(), enc.root.cid.toString())
})

test('a missing or tampered page is refused', async () => {
  const entries: ManifestEntry[] = []
  for (let i = 0; i < 25000; i++) entries.push({ type: 'file', path: `f${i}`, mode: 0o644, size: 1000, chunks: [chunk(i)] })
  const enc = encodeManifest(createManifest({ name: 'x', version: '1.0.0' }, entries))
  const src = mapSource(enc.blocks)
  const page = enc.blocks[0]
  const bad = page.bytes.slice(); bad[bad.length - 1] ^= 1
  src.map.set(page.cid.toString(), bad)
  await assert.rejects(decodeManifest(enc.root.cid, src), code(CoreErrorCode.BLOCK_MISMATCH))
})

/** Encodes a root block by hand, bypassing the encoder's own validation. */
function rawRoot (over: Record<string, unknown>, entries: unknown[]): Block {
  const m = small()
  return encodeCborBlock({
    format: MANIFEST_FORMAT, name: m.name, version: m.version, description: '', categories: [], tags: [], dependencies: {},
    optionalDependencies: {}, platform: 'any', totalSize: 0, entryCount: entries.length, entries, ...over
  })
}

test('decode refuses schema violations with typed errors', async () => {
  const cases: Array<[Record<string, unknown>, unknown[], string]> = [
    [{ name: 'Bad Name' }, [], CoreErrorCode.INVALID_NAME],
    [{ version: '1.0' }, [], CoreErrorCode.INVALID_VERSION],
    [{ format: 'other' }, [], CoreErrorCode.INVALID_MANIFEST],
    [{ extra: 1 }, [], CoreErrorCode.INVALID_MANIFEST],
    [{ entryCount: 5 }, [], CoreErrorCode.INVALID_MANIFEST],
    [{ totalSize: 7 }, [], CoreErrorCode.SIZE_MISMATCH],
    [{ description: 'x'.repeat(20000) }, [], CoreErrorCode.INVALID_MANIFEST],
    [{ tags: Array(100).fill('t') }, [], CoreErrorCode.INVALID_MANIFEST],
    [{ dependencies: { 'ok-name': 'not a range' } }, [], CoreErrorCode.INVALID_VERSION],
    [{ platform: '../x' }, [], CoreErrorCode.INVALID_MANIFEST],
    [{ entry: 'missing.js' }, [], CoreErrorCode.INVALID_MANIFEST],
    [{ totalSize: 10 }, [{ type: 'file', path: 'a', mode: 0o4755, size: 10, chunks: [chunk(1, 10)] }], CoreErrorCode.INVALID_MANIFEST],
    [{ totalSize: 10 }, [{ type: 'file', path: 'a', mode: 0o644, size: 10, chunks: [chunk(1, 11)] }], CoreErrorCode.SIZE_MISMATCH],
    [{ totalSize: 10 }, [{ type: 'file', path: 'a', mode: 0o644, size: 10, chunks: [[CID.parse('bafkqaaa'), 10]] }], CoreErrorCode.INVALID_MANIFEST],
    [{}, [{ type: 'weird', path: 'a' }], CoreErrorCode.INVALID_MANIFEST],
    [{}, [{ type: 'device', path: 'dev' }], CoreErrorCode.UNSAFE_PATH],
    [{}, [{ type: 'fifo', path: 'p' }], CoreErrorCode.UNSAFE_PATH],
    [{}, ['not a map'], CoreErrorCode.INVALID_MANIFEST]
  ]
  for (const [over, entries, want] of cases) {
    const root = rawRoot(over, entries)
    await assert.rejects(decodeManifest(root.cid, mapSource([root])), code(want), JSON.stringify(over) + JSON.stringify(entries.map(String)))
  }
})

test('decode refuses unsafe paths', async () => {
  const paths = ['/etc/passwd', '../x', 'a/../../x', 'a/./b', 'a//b', 'a/', 'a\\b', 'a\u0000b', '.', '', 'C:/x', `${'d/'.repeat(70)}f`, 'x'.repeat(300)]
  for (const p of paths) {
    const root = rawRoot({}, [{ type: 'dir', path: p, mode: 0o755 }])
    await assert.rejects(decodeManifest(root.cid, mapSource([root])), code(CoreErrorCode.UNSAFE_PATH), JSON.stringify(p))
  }
  const trees: unknown[][] = [
    [{ type: 'dir', path: 'a', mode: 0o755 }, { type: 'dir', path: 'a', mode: 0o755 }],
    [{ type: 'dir', path: 'Readme', mode: 0o755 }, { type: 'dir', path: 'README', mode: 0o755 }],
    [{ type: 'dir', path: 'caf\u00e9', mode: 0o755 }, { type: 'dir', path: 'cafe\u0301', mode: 0o755 }],
    [{ type: 'symlink', path: 'l', target: '../outside' }],
    [{ type: 'symlink', path: 'a/l', target: '../../outside' }],
    [{ type: 'symlink', path: 'l', target: '/etc' }],
    [{ type: 'symlink', path: 'l', target: 'sub' }, { type: 'dir', path: 'l/x', mode: 0o755 }],
    [{ type: 'file', path: 'f', mode: 0o644, size: 0, chunks: [] }, { type: 'dir', path: 'f/x', mode: 0o755 }]
  ]
  for (const t of trees) {
    const root = rawRoot({}, t)
    await assert.rejects(decodeManifest(root.cid, mapSource([root])), code(CoreErrorCode.UNSAFE_PATH), JSON.stringify(t))
  }
})

test('decode limits: deep nesting, oversized counts and truncated CBOR are refused before decoding', async () => {
  // 100 000 nested arrays: would overflow a recursive decoder's stack.
  const deep = new Uint8Array(100_001).fill(0x81); deep[100_000] = 0x00
  assert.throws(() => scanCbor(deep, { maxDepth: 12, maxItems: 1e6 }), code(CoreErrorCode.INVALID_MANIFEST))
  const deepCid = CID.createV1(0x71, await sha256.digest(deep))
  await assert.rejects(decodeManifest(deepCid, { get: async () => deep }), code(CoreErrorCode.INVALID_MANIFEST))
  // An array claiming 2^32 items in a few bytes.
  assert.throws(() => scanCbor(Uint8Array.from([0x9a, 0xff, 0xff, 0xff, 0xff, 0x00]), { maxDepth: 12, maxItems: 1e6 }), code(CoreErrorCode.INVALID_MANIFEST))
  // Indefinite length, truncated, trailing bytes.
  for (const b of [[0x9f, 0x01, 0xff], [0x82, 0x01], [0x01, 0x02]]) {
    assert.throws(() => scanCbor(Uint8Array.from(b), { maxDepth: 12, maxItems: 1e6 }), code(CoreErrorCode.INVALID_MANIFEST))
  }
  // Well-formed dag-cbor passes.
  scanCbor(dagCbor.encode({ a: [1, [2, [3]]], b: 'x' }), { maxDepth: 12, maxItems: 100 })
  // Too many items for the limit.
  assert.throws(() => scanCbor(dagCbor.encode(Array(200).fill(1)), { maxDepth: 12, maxItems: 100 }), code(CoreErrorCode.INVALID_MANIFEST))
  // A root over the block limit is refused by verifyBlock before any parsing.
  const huge = new Uint8Array(MAX_BLOCK_SIZE + 10)
  const hugeCid = CID.createV1(0x71, await sha256.digest(huge))
  await assert.rejects(decodeManifest(hugeCid, { get: async () => huge }), code(CoreErrorCode.BLOCK_TOO_LARGE))
  // A raw CID is not a manifest.
  await assert.rejects(decodeManifest(rawCid(new Uint8Array(1)), { get: async () => new Uint8Array(1) }), code(CoreErrorCode.INVALID_MANIFEST))
})

test('encode refuses a manifest that breaks the schema', () => {
  const m = small()
  m.entries.push({ type: 'file', path: '../escape', mode: 0o644, size: 0, chunks: [] })
  assert.throws(() => encodeManifest(m), code(CoreErrorCode.UNSAFE_PATH))
  const n = small(); n.totalSize = 1
  assert.throws(() => encodeManifest(n), code(CoreErrorCode.SIZE_MISMATCH))
})

test('paged manifests share unchanged pages between versions', () => {
  const entries = (extra: number): ManifestEntry[] => {
    const out: ManifestEntry[] = []
    for (let i = 0; i < 3000; i++) out.push({ type: 'file', path: `src/f-${String(i).padStart(5, '0')}.js`, mode: 0o644, size: 1000, chunks: [chunk(i === 1500 ? extra : i)] })
    return out
  }
  const v1 = encodeManifest(createManifest({ name: 'paged', version: '1.0.0' }, entries(1500)))
  const v2 = encodeManifest(createManifest({ name: 'paged', version: '1.0.1' }, entries(999_999)))
  // One more file in the middle shifts nothing but its own page either.
  const more = entries(1500)
  more.splice(700, 0, { type: 'file', path: 'src/f-00699a.js', mode: 0o644, size: 1000, chunks: [chunk(424242)] })
  const v3 = encodeManifest(createManifest({ name: 'paged', version: '1.0.2' }, more))
  const have = new Set(v1.blocks.map(b => b.cid.toString()))
  assert.ok(v1.blocks.length > 5, `${v1.blocks.length} pages`)
  for (const v of [v2, v3]) {
    const fresh = v.blocks.filter(b => !have.has(b.cid.toString()))
    assert.ok(fresh.length <= 3, `${fresh.length} new blocks of ${v.blocks.length} (${v === v2 ? "v2" : "v3"})`) // root + the page(s) around the change
  }
})

test('loadManifestPacked packs each block\'s chunk refs before fetching the next, with the same result and checks', async () => {
  const entries: ManifestEntry[] = []
  for (let i = 0; i < 30000; i++) entries.push({ type: 'file', path: `dir/file-${String(i).padStart(6, '0')}.js`, mode: 0o644, size: 1000, chunks: [chunk(i)] })
  const big: ChunkRef[] = []
  for (let i = 0; i < 20000; i++) big.push(chunk(100000 + i, 65536))
  entries.push({ type: 'file', path: 'zz-big.bin', mode: 0o644, size: 20000 * 65536, chunks: big })
  const m = createManifest({ name: 'many', version: '1.0.0' }, [{ type: 'dir', path: 'dir', mode: 0o755 }, ...entries])
  const enc = encodeManifest(m)
  const src = mapSource(enc.blocks)
  // Log every fetch and every packed ref, to see that packing keeps pace with fetching.
  const events: string[] = []
  const source = { get: async (cid: CID) => { events.push('get'); return await src.get(cid) } }
  const loaded = await loadManifestPacked(enc.root.cid, source, {
    newList: () => {
      const list = new ChunkList()
      return { list, add (cid: CID, size: number) { events.push('add'); list.add(cid, size) } }
    }
  })
  const plain = await loadManifest(enc.root.cid, src)
  assert.deepEqual(loaded.manifestBlocks.map(String), plain.manifestBlocks.map(String))
  for (const e of loaded.manifest.entries) {
    if (e.type !== 'file') continue
    assert.deepEqual(e.chunks, [])
    e.chunks = (loaded.lists.get(e) as { list: ChunkList }).list.refs()
  }
  assert.deepEqual(loaded.manifest, m)
  // Every fetched block but the root holds chunk refs that are packed before the next fetch.
  const gets = events.flatMap((ev, i) => ev === 'get' ? [i] : [])
  for (let k = 1; k < gets.length - 1; k++) assert.equal(events[gets[k] + 1], 'add', `block ${k} packed before the next fetch`)
  assert.equal(events.filter(ev => ev === 'add').length, 50000)

  // The packed path keeps every check: a file whose chunks do not add up to its size.
  const bad = rawRoot({ totalSize: 5 }, [{ type: 'file', path: 'a', mode: 0o644, size: 5, chunks: [[chunk(1)[0], 4]] }])
  await assert.rejects(loadManifestPacked(bad.cid, mapSource([bad]), { newList: () => new ChunkList() }), code(CoreErrorCode.SIZE_MISMATCH))
  const notRaw = rawRoot({ totalSize: 4 }, [{ type: 'file', path: 'a', mode: 0o644, size: 4, chunks: [[bad.cid, 4]] }])
  await assert.rejects(loadManifestPacked(notRaw.cid, mapSource([notRaw]), { newList: () => new ChunkList() }), code(CoreErrorCode.INVALID_MANIFEST))
})

test('issue 10 #6: expansion stops at the first chunk list past the declared size, for both decoders', async () => {
  // One full chunk list (16384 one-byte chunks) named 64 times (1M refs) by a file that declares 1 byte.
  const refs: ChunkRef[] = []
  for (let i = 0; i < 16384; i++) refs.push(chunk(i, 1))
  const list = encodeCborBlock({ format: 'swarmpack/chunk-list@1', chunks: refs })
  const root = rawRoot({ totalSize: 1 }, [{ type: 'file', path: 'a', mode: 0o644, size: 1, chunkLists: Array(64).fill(list.cid) }])
  for (const load of [
    async (src: { get: (cid: CID) => Promise<Uint8Array> }) => await loadManifest(root.cid, src),
    async (src: { get: (cid: CID) => Promise<Uint8Array> }) => await loadManifestPacked(root.cid, src, { newList: () => new ChunkList() })
  ]) {
    const src = mapSource([root, list])
    let listReads = 0
    const counting = { get: async (cid: CID) => { if (cid.equals(list.cid)) listReads++; return await src.get(cid) } }
    await assert.rejects(load(counting), code(CoreErrorCode.SIZE_MISMATCH))
    assert.equal(listReads, 1, 'one chunk list read, not every repeat')
  }
  // Files are checked against the manifest's totalSize as they are read: a second file past it is
  // refused before its chunk lists are fetched.
  const two = rawRoot({ totalSize: 1 }, [
    { type: 'file', path: 'a', mode: 0o644, size: 1, chunks: [chunk(1, 1)] },
    { type: 'file', path: 'b', mode: 0o644, size: 16384, chunkLists: [list.cid] }
  ])
  let reads = 0
  const src2 = mapSource([two, list])
  await assert.rejects(loadManifest(two.cid, { get: async (cid: CID) => { if (cid.equals(list.cid)) reads++; return await src2.get(cid) } }), code(CoreErrorCode.SIZE_MISMATCH))
  assert.equal(reads, 0)
})

test('issue 10 #7: path collisions use full Unicode case folding, also through symlinks', async () => {
  const dir = (path: string): unknown => ({ type: 'dir', path, mode: 0o755 })
  const trees: unknown[][] = [
    [dir('s'), dir('\u017f')], // ſ folds to s
    [dir('stra\u00dfe'), dir('STRASSE')], // ß folds to ss
    [dir('\ufb01le'), dir('file')], // the ligature ﬁ folds to fi
    [dir('\u0131'), dir('I')], // dotless ı: NTFS's upper-case table makes it I
    [dir('\u212a'), dir('k')], // Kelvin sign
    // a/d/s is a symlink to ..; a/d/ſ/e lands on a/d/s/e on a case-insensitive disk, i.e. in a, not in a/d
    [dir('a'), dir('a/d'), { type: 'symlink', path: 'a/d/s', target: '..' }, dir('a/d/\u017f'), dir('a/d/\u017f/e')],
    [dir('a'), dir('a/d'), { type: 'symlink', path: 'a/d/\u017f', target: '..' }, dir('a/d/S/e')],
    // a link whose target walks through a link spelled another way
    [dir('a'), dir('a/b'), { type: 'symlink', path: 'a/b/s', target: '..' }, dir('a/b/x'), { type: 'symlink', path: 'a/b/x/l', target: '../\u017f/y' }]
  ]
  for (const t of trees) {
    const root = rawRoot({}, t)
    await assert.rejects(decodeManifest(root.cid, mapSource([root])), code(CoreErrorCode.UNSAFE_PATH), JSON.stringify(t))
  }
  // names that only look alike stay distinct
  const fine = rawRoot({}, [dir('s'), dir('t'), dir('\u00e9'), dir('e')])
  await decodeManifest(fine.cid, mapSource([fine]))
})

test('issue 10 #11: CBOR tags count toward the nesting depth in the pre-scan', () => {
  // 1 MiB of nested tags around one integer: nothing but tags, so no array or map adds depth
  const tags = new Uint8Array(1024 * 1024).fill(0xc6); tags[tags.length - 1] = 0x00
  assert.throws(() => scanCbor(tags, { maxDepth: 12, maxItems: 1e7 }), code(CoreErrorCode.INVALID_MANIFEST))
  // a tag inside 11 arrays is at depth 12: allowed; one more array and it is refused
  const at = (arrays: number): Uint8Array => Uint8Array.from([...Array(arrays).fill(0x81), 0xc6, 0x00])
  scanCbor(at(11), { maxDepth: 12 })
  assert.throws(() => scanCbor(at(12), { maxDepth: 12 }), code(CoreErrorCode.INVALID_MANIFEST))
  // CID links (tag 42) in real manifests still pass
  scanCbor(encodeManifest(small()).root.bytes, { maxDepth: 12 })
})
