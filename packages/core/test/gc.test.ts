import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isSwarmpackError } from '../src/errors.js'
import { FsBlockstore } from '../src/store/index.js'
import { linkBlock, rawBlock, tempDir } from './fixtures/blocks.js'

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
})
