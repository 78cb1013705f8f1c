import assert from 'node:assert/strict'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isSwarmpackError } from '../src/errors.js'
import { FsBlockstore } from '../src/store/index.js'
import { linkBlock, rawBlock, tempDir } from './fixtures/blocks.js'

/** Bytes of the store's files: the index and every segment. */
async function filesSize (path: string): Promise<number> {
  let total = (await stat(join(path, 'index.lmdb'))).size
  for (const name of await readdir(join(path, 'segments'))) total += (await stat(join(path, 'segments', name))).size
  return total
}

describe('gc', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => { ({ dir, cleanup } = await tempDir('swarmpack-gc-')) })
  after(async () => { await cleanup() })

  it('removes every unpinned block, or down to a target size, LRU first', async () => {
    const store = await FsBlockstore.open(join(dir, 'a'))
    const leaf = rawBlock(500)
    const root = linkBlock([leaf.cid])
    await store.put(leaf.cid, leaf.bytes)
    await store.put(root.cid, root.bytes)
    await store.pin('p', root.cid)
    const loose = Array.from({ length: 5 }, () => rawBlock(1000))
    for (const b of loose) await store.put(b.cid, b.bytes)
    await store.getBytes(loose[0].cid) // most recently used now
    const pinnedBytes = leaf.bytes.byteLength + root.bytes.byteLength

    const partial = await store.gc({ targetSize: pinnedBytes + 2000 })
    assert.equal(partial.removedBlocks, 3)
    assert.equal(partial.bytes, pinnedBytes + 2000)
    assert.equal(store.has(loose[0].cid), true)
    assert.equal(store.has(loose[4].cid), true)
    assert.equal(store.has(loose[1].cid), false)

    const removed: string[] = []
    const full = await store.gc({ onProgress: e => removed.push(e.detail.cid.toString()) })
    assert.equal(full.removedBlocks, 2)
    assert.equal(full.removedBytes, 2000)
    assert.deepEqual(removed.sort(), [loose[0].cid.toString(), loose[4].cid.toString()].sort())
    assert.deepEqual(store.stats(), { bytes: pinnedBytes, blocks: 2, maxSize: Infinity, pins: 1 })
    assert.equal(store.has(leaf.cid), true)

    await store.unpin('p')
    assert.equal((await store.gc()).removedBlocks, 2)
    assert.equal(store.stats().blocks, 0)

    const ac = new AbortController()
    ac.abort()
    await store.put(leaf.cid, leaf.bytes)
    await assert.rejects(store.gc({ signal: ac.signal }), (err: unknown) => isSwarmpackError(err, 'ERR_ABORTED'))
    await store.close()
  })

  it('reports its size on disk, deletes emptied segments at once, gives dead bytes back by compaction (explicit, and in gc)', async () => {
    const path = join(dir, 'space')
    let store = await FsBlockstore.open(path, { fsync: false })
    const batch = (): ReturnType<typeof rawBlock>[] => Array.from({ length: 320 }, () => rawBlock(64 * 1024)) // 20 MiB
    const first = batch()
    await Promise.all(first.map(async b => await store.put(b.cid, b.bytes)))
    const full = await store.diskUsage()
    assert.equal(full.fileBytes, await filesSize(path))
    assert.ok(full.usedBytes >= 20 * 1024 * 1024, `used ${full.usedBytes}`)
    // removing every block of a segment deletes the segment: the space goes back without compaction
    const none = await store.gc({ compact: false })
    assert.equal(none.removedBlocks, first.length)
    assert.equal(none.compacted, false)
    assert.deepEqual(await readdir(join(path, 'segments')), [])
    assert.ok((await store.diskUsage()).fileBytes < 1024 * 1024)
    // removing part of a segment leaves dead bytes, reported as reusable until compaction
    const second = batch()
    await Promise.all(second.map(async b => await store.put(b.cid, b.bytes)))
    for (const b of second.slice(0, 200)) await store.delete(b.cid)
    const before = await store.diskUsage()
    assert.ok(before.reusableBytes >= 200 * 64 * 1024, `reusable ${before.reusableBytes}`)
    // explicit compaction keeps the blocks and shrinks the files to what is used
    const after = await store.compact()
    assert.ok(after.fileBytes < before.fileBytes / 2, `${before.fileBytes} -> ${after.fileBytes}`)
    assert.ok(after.reusableBytes < 1024 * 1024, `reusable after ${after.reusableBytes}`)
    assert.equal(after.fileBytes, await filesSize(path))
    for (const b of second.slice(200)) assert.deepEqual(await store.getBytes(b.cid), b.bytes)
    assert.equal(store.stats().blocks, 120)
    await store.close()
    // gc compacts in 'auto' mode only when at least 16 MiB and a quarter of the file are free;
    // with compact: true always; the store reopens intact after either
    store = await FsBlockstore.open(path, { fsync: false })
    assert.equal(store.stats().blocks, 120)
    const report = await store.gc()
    assert.equal(report.removedBlocks, 120)
    assert.equal(report.compacted, false) // 7.5 MiB freed
    const forced = await store.gc({ compact: true })
    assert.equal(forced.compacted, true)
    assert.ok(forced.fileBytes < 1024 * 1024, `${forced.fileBytes}`)
    assert.deepEqual(await readdir(path).then(names => names.filter(n => n.includes('.compact'))), [])
    await store.close()
    store = await FsBlockstore.open(path)
    assert.equal(store.stats().blocks, 0)
    await store.close()
  })
})
