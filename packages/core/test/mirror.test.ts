import assert from 'node:assert/strict'
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { verifyBlock } from '../src/block.js'
import { isSwarmpackError } from '../src/errors.js'
import { FsProvider, exportMirror, writeMirrorIndexHead } from '../src/mirror/index.js'
import { MAX_INDEX_HEAD_SIZE, MIRROR_DESCRIPTOR, mirrorBlockPath } from '../src/mirror/layout.js'
import { FsBlockstore, storeProvider } from '../src/store/index.js'
import { pack, unpack } from '../src/package/index.js'
import { linkBlock, rawBlock, tempDir } from './fixtures/blocks.js'

const code = (c: string) => (err: unknown) => isSwarmpackError(err, c)

describe('exportMirror + FsProvider', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let store: FsBlockstore
  before(async () => {
    ({ dir, cleanup } = await tempDir('swarmpack-mirror-'))
    store = await FsBlockstore.open(join(dir, 'store'), { fsync: false })
  })
  after(async () => { await store.close(); await cleanup() })

  it('exports what the roots reach, idempotently, and reads it back', async () => {
    const leaves = Array.from({ length: 6 }, (_, i) => rawBlock(1000 + i))
    const shared = rawBlock(500)
    const inner = linkBlock([leaves[0].cid, leaves[1].cid, shared.cid])
    const root1 = linkBlock([inner.cid, leaves[2].cid, leaves[3].cid])
    const root2 = linkBlock([shared.cid, leaves[4].cid])
    const unrelated = rawBlock(99)
    for (const b of [...leaves, shared, inner, root1, root2, unrelated]) await store.put(b.cid, b.bytes)
    const mirror = join(dir, 'm1')
    const events: number[] = []
    const report = await exportMirror(store, [root1.cid, root2.cid], mirror, { onProgress: e => events.push(e.detail.blocks) })
    // root1, inner, leaves 0..3, shared, root2, leaf 4 = 9 (leaf 5 and `unrelated` are not reached)
    assert.equal(report.blocks, 9)
    assert.equal(report.written, 9)
    assert.equal(events.length, 9)
    const files = (await readdir(join(mirror, 'ipfs'))).sort()
    assert.ok(files.includes('bafkqaaa'))
    assert.equal((await stat(join(mirror, 'ipfs', 'bafkqaaa'))).size, 0)
    assert.equal(files.length, 10)
    assert.deepEqual(JSON.parse(await readFile(join(mirror, MIRROR_DESCRIPTOR), 'utf8')), { layout: 1 })
    assert.ok(!files.includes(unrelated.cid.toString()))

    // a rerun writes nothing; a damaged file is replaced
    await writeFile(join(mirror, mirrorBlockPath(leaves[0].cid)), 'garbage')
    const again = await exportMirror(store, [root1.cid, root2.cid], mirror)
    assert.equal(again.written, 1)
    assert.equal(again.skipped, 8)

    const provider = await FsProvider.open(mirror)
    for (const b of [...leaves.slice(0, 5), shared, inner, root1, root2]) {
      const bytes = await provider.get(b.cid)
      verifyBlock(b.cid, bytes)
      assert.equal(await provider.has(b.cid), true)
    }
    await assert.rejects(provider.get(leaves[5].cid), code('ERR_NOT_FOUND'))
    assert.equal(await provider.has(leaves[5].cid), false)
    const got: string[] = []
    for await (const b of provider.getMany([root1.cid, leaves[5].cid, root2.cid, unrelated.cid])) got.push(b.cid.toString())
    assert.deepEqual(got.sort(), [root1.cid.toString(), root2.cid.toString()].sort())
    // the FsProvider can feed a second store: a full round trip
    const store2 = await FsBlockstore.open(join(dir, 'store2'))
    for await (const b of provider.getMany([root1.cid, inner.cid, ...leaves.slice(0, 4).map(l => l.cid), shared.cid])) await store2.put(b.cid, b.bytes)
    assert.equal(store2.stats().blocks, 7)
    await store2.close()
  })

  it('raises ERR_NOT_FOUND when the store lacks a reachable block, and a rerun completes', async () => {
    const leaf = rawBlock(10)
    const root = linkBlock([leaf.cid])
    await store.put(root.cid, root.bytes)
    const mirror = join(dir, 'm2')
    await assert.rejects(exportMirror(store, [root.cid], mirror), code('ERR_NOT_FOUND'))
    await store.put(leaf.cid, leaf.bytes)
    const report = await exportMirror(store, [root.cid], mirror)
    assert.deepEqual([report.written, report.skipped], [1, 1])
  })

  it('refuses to export into a directory with a foreign descriptor', async () => {
    const mirror = join(dir, 'm-foreign')
    await mkdir(mirror, { recursive: true })
    await writeFile(join(mirror, MIRROR_DESCRIPTOR), '{"layout":2}')
    await assert.rejects(exportMirror(store, [], mirror), code('ERR_MIRROR_INVALID'))
    assert.equal(await readFile(join(mirror, MIRROR_DESCRIPTOR), 'utf8'), '{"layout":2}')
  })

  it('honours an aborted signal', async () => {
    const leaf = rawBlock(10)
    await store.put(leaf.cid, leaf.bytes)
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(exportMirror(store, [leaf.cid], join(dir, 'm3'), { signal: ac.signal }), code('ERR_ABORTED'))
  })

  it('publishes and reads index heads', async () => {
    const mirror = join(dir, 'm4')
    await exportMirror(store, [], mirror)
    const head = new TextEncoder().encode('signed head v1')
    await writeMirrorIndexHead(mirror, 'indexer-1', head)
    await writeMirrorIndexHead(mirror, 'indexer-1', new TextEncoder().encode('signed head v2'))
    const provider = await FsProvider.open(mirror)
    assert.equal(new TextDecoder().decode(await provider.getIndexHead('indexer-1')), 'signed head v2')
    await assert.rejects(provider.getIndexHead('nobody'), code('ERR_NOT_FOUND'))
    await assert.rejects(provider.getIndexHead('../etc'), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(writeMirrorIndexHead(mirror, 'a/b', head), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(writeMirrorIndexHead(mirror, 'big', new Uint8Array(MAX_INDEX_HEAD_SIZE + 1)), code('ERR_INVALID_ARGUMENT'))
    await writeFile(join(mirror, 'indexes', 'indexer-1', 'head'), new Uint8Array(MAX_INDEX_HEAD_SIZE + 1))
    await assert.rejects(provider.getIndexHead('indexer-1'), code('ERR_BLOCK_TOO_LARGE'))
  })

  it('carries a packed package: pack into the store, export, unpack from the mirror and from the store', async () => {
    const src = join(dir, 'pkg-src')
    await mkdir(join(src, 'lib', 'deep'), { recursive: true })
    const big = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17))
    await writeFile(join(src, 'lib', 'deep', 'big.bin'), big)
    await writeFile(join(src, 'index.js'), 'export default 42\n')
    await writeFile(join(src, 'empty'), '')
    await chmod(join(src, 'index.js'), 0o755)
    const { root } = await pack(src, { name: 'demo', version: '1.0.0', entry: 'index.js' }, { blockstore: store })
    await store.pin('demo@1.0.0', root)
    assert.deepEqual(await store.missingPinned(), [])
    const mirror = join(dir, 'm-pkg')
    const report = await exportMirror(store, [root], mirror, { fsync: false })
    assert.ok(report.blocks >= 4)
    const fromMirror = await unpack(root, await FsProvider.open(mirror), join(dir, 'out-mirror'))
    const fromStore = await unpack(root, storeProvider(store), join(dir, 'out-store'))
    for (const out of [fromMirror.path, fromStore.path]) {
      assert.deepEqual(await readFile(join(out, 'lib', 'deep', 'big.bin')), Buffer.from(big))
      assert.equal(await readFile(join(out, 'index.js'), 'utf8'), 'export default 42\n')
      assert.equal((await stat(join(out, 'empty'))).size, 0)
    }
  })
})
