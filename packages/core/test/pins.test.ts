import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isSwarmpackError } from '../src/errors.js'
import { FsBlockstore, StoreErrorCode } from '../src/store/index.js'
import { linkBlock, rawBlock, tempDir } from './fixtures/blocks.js'

const code = (c: string) => (err: unknown) => isSwarmpackError(err, c)

describe('pins', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => { ({ dir, cleanup } = await tempDir('swarmpack-pins-')) })
  after(async () => { await cleanup() })

  it('persist across a reopen, atomically, and protect what the root reaches', async () => {
    const path = join(dir, 'persist')
    const leaf = rawBlock(100)
    const mid = linkBlock([leaf.cid])
    const root = linkBlock([mid.cid])
    let store = await FsBlockstore.open(path)
    for (const b of [leaf, mid, root]) await store.put(b.cid, b.bytes)
    await store.pin('app@1.0.0', root.cid)
    await store.pin('lock', root.cid)
    await store.close()
    assert.deepEqual(JSON.parse(await readFile(join(path, 'pins.json'), 'utf8')).pins, { 'app@1.0.0': root.cid.toString(), lock: root.cid.toString() })

    store = await FsBlockstore.open(path)
    assert.deepEqual(store.pins().map(p => [p.name, p.root.toString()]), [['app@1.0.0', root.cid.toString()], ['lock', root.cid.toString()]])
    assert.equal(await store.isPinned(leaf.cid), true)
    await assert.rejects(store.delete(leaf.cid), code(StoreErrorCode.BLOCK_PINNED))
    await store.unpin('app@1.0.0')
    assert.equal(await store.isPinned(leaf.cid), true) // still pinned by `lock`
    await store.unpin('lock')
    assert.equal(await store.isPinned(leaf.cid), false)
    await store.delete(leaf.cid)
    await assert.rejects(store.unpin('lock'), code(StoreErrorCode.PIN_NOT_FOUND))
    await assert.rejects(store.pin('', root.cid), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(store.pin('x', 'bafy' as never), code('ERR_INVALID_ARGUMENT'))
    await store.close()
    store = await FsBlockstore.open(path)
    assert.deepEqual(store.pins(), [])
    await store.close()
  })

  it('cover blocks that arrive after the pin (a download in progress)', async () => {
    const store = await FsBlockstore.open(join(dir, 'partial'))
    const leaves = [rawBlock(10), rawBlock(11)]
    const mid = linkBlock([leaves[1].cid])
    const root = linkBlock([leaves[0].cid, mid.cid])
    await store.pin('pkg', root.cid)
    assert.equal(await store.isPinned(root.cid), true)
    assert.deepEqual((await store.missingPinned()).map(String), [root.cid.toString()])
    await store.put(root.cid, root.bytes)
    // children are known as soon as the root arrives; the grandchild once `mid` arrives
    assert.equal(await store.isPinned(mid.cid), true)
    assert.equal(await store.isPinned(leaves[1].cid), false)
    await store.put(leaves[1].cid, leaves[1].bytes)
    await store.put(mid.cid, mid.bytes)
    assert.equal(await store.isPinned(leaves[1].cid), true)
    assert.deepEqual((await store.missingPinned()).map(String), [leaves[0].cid.toString()])
    await store.close()
  })

  it('refuses to open with a damaged pins file rather than forget the pins', async () => {
    const path = join(dir, 'damaged')
    const store = await FsBlockstore.open(path)
    await store.close()
    await writeFile(join(path, 'pins.json'), '{"version":1,"pins":{"a":"not a cid"}}')
    await assert.rejects(FsBlockstore.open(path), code(StoreErrorCode.PINS_CORRUPT))
    await writeFile(join(path, 'pins.json'), '{"vers')
    await assert.rejects(FsBlockstore.open(path), code(StoreErrorCode.PINS_CORRUPT))
    // the failed opens released the lock
    await writeFile(join(path, 'pins.json'), '{"version":1,"pins":{}}')
    await (await FsBlockstore.open(path)).close()
  })
})
