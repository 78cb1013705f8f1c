/**
 * The store under a real Helia node (never started: no network needed), through Helia's own
 * blockstore wrapper, pinning (which walks the DAG through our `get`) and gc (our `delete`).
 */
import '../src/polyfill.js'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createHelia } from 'helia'
import { FsBlockstore } from '../src/store/index.js'
import { linkBlock, rawBlock, tempDir } from './fixtures/blocks.js'

describe('FsBlockstore under Helia', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => { ({ dir, cleanup } = await tempDir('swarmpack-helia-')) })
  after(async () => { await cleanup() })

  it('serves Helia put/get/has, pins and gc', async () => {
    const store = await FsBlockstore.open(join(dir, 'store'))
    const helia = await createHelia({ blockstore: store })
    try {
      const leaf = rawBlock(1000)
      const root = linkBlock([leaf.cid])
      const loose = rawBlock(500)
      for (const b of [leaf, root, loose]) await helia.blockstore.put(b.cid, b.bytes)
      assert.equal(store.stats().blocks, 3)
      assert.equal(await helia.blockstore.has(root.cid), true)
      const chunks: Uint8Array[] = []
      for await (const c of helia.blockstore.get(leaf.cid, { offline: true })) chunks.push(c)
      assert.deepEqual(chunks, [leaf.bytes])
      for await (const _ of helia.pins.add(root.cid, { offline: true } as never)) { /* walk */ }
      await helia.gc()
      assert.equal(store.has(loose.cid), false)
      assert.equal(store.has(leaf.cid), true)
      assert.equal(store.has(root.cid), true)
    } finally {
      await helia.stop()
      await store.close()
    }
  })
})
