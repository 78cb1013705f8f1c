import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isSwarmpackError } from '../src/errors.js'
import { FsBlockstore } from '../src/store/index.js'
import { linkBlock, rawBlock, tempDir } from './fixtures/blocks.js'
import { rawBlocks, writeRawBlock } from './fixtures/store-db.js'

/** Flips one byte of a stored block in the closed store at `path` (same size, so reads don't notice). */
async function flip (path: string, key: string, at: number): Promise<void> {
  const bytes = (await rawBlocks(path)).get(key)
  if (bytes === undefined) throw new Error(`no block ${key}`)
  bytes[at] ^= 0xff
  await writeRawBlock(path, key, bytes)
}

describe('verify', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => { ({ dir, cleanup } = await tempDir('swarmpack-verify-')) })
  after(async () => { await cleanup() })

  it('reports and removes a block with a flipped byte, and names pinned blocks to refetch', async () => {
    const path = join(dir, 'a')
    let store = await FsBlockstore.open(path)
    const blocks = Array.from({ length: 8 }, (_, i) => rawBlock(4096 + i))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    const root = linkBlock([blocks[3].cid])
    await store.put(root.cid, root.bytes)
    await store.pin('p', root.cid)
    // flip one byte of two blocks, behind the store's back
    await store.close()
    for (const victim of [blocks[2], blocks[3]]) await flip(path, victim.cid.toString(), 100)
    store = await FsBlockstore.open(path)
    const events: Array<{ checked: number, ok: boolean }> = []
    const report = await store.verify({ onProgress: e => { if (e.type === 'swarmpack:store:verify') events.push(e.detail as never) } })
    assert.equal(report.checked, 9)
    assert.deepEqual(report.corrupt.map(c => c.cid.toString()).sort(), [blocks[2].cid.toString(), blocks[3].cid.toString()].sort())
    assert.ok(report.corrupt.every(c => c.reason === 'ERR_BLOCK_MISMATCH'))
    assert.deepEqual(report.missingPinned.map(String), [blocks[3].cid.toString()])
    assert.equal(events.length, 9)
    assert.equal(events.filter(e => !e.ok).length, 2)
    assert.equal(store.has(blocks[2].cid), false)
    assert.equal(store.stats().blocks, 7)
    // a second pass is clean
    assert.deepEqual((await store.verify()).corrupt, [])
    // getBytes({ verify: true }) catches it on read too
    await store.close()
    await flip(path, blocks[0].cid.toString(), 0)
    store = await FsBlockstore.open(path)
    await assert.rejects(store.getBytes(blocks[0].cid, { verify: true }), (err: unknown) => isSwarmpackError(err, 'ERR_CORRUPT_BLOCK'))
    assert.equal(store.has(blocks[0].cid), false)
    // abort
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(store.verify({ signal: ac.signal }), (err: unknown) => isSwarmpackError(err, 'ERR_ABORTED'))
    await store.close()
  })
})
