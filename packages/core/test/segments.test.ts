import assert from 'node:assert/strict'
import { readdir, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isSwarmpackError } from '../src/errors.js'
import { FsBlockstore } from '../src/store/index.js'
import { SegmentLog, type Appended } from '../src/store/segments.js'
import { rawBlock, tempDir } from './fixtures/blocks.js'

const segmentsOf = async (path: string): Promise<string[]> => (await readdir(join(path, 'segments'))).sort()

describe('segment log', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => { ({ dir, cleanup } = await tempDir('swarmpack-segments-')) })
  after(async () => { await cleanup() })

  it('rolls over to new segments, reads every block back after reopening, and continues the newest', async () => {
    const path = join(dir, 'roll')
    let store = await FsBlockstore.open(path, { segmentBytes: 64 * 1024 })
    const blocks = Array.from({ length: 60 }, (_, i) => rawBlock(5000 + i * 97))
    // in flight together (batches that cross segment ends) and one at a time
    await Promise.all(blocks.slice(0, 40).map(async b => await store.put(b.cid, b.bytes)))
    for (const b of blocks.slice(40)) await store.put(b.cid, b.bytes)
    const names = await segmentsOf(path)
    assert.ok(names.length >= 5, `segments ${names.join(' ')}`)
    for (const name of names) assert.ok((await stat(join(path, 'segments', name))).size <= 64 * 1024 + 10_000)
    await store.close()
    store = await FsBlockstore.open(path, { segmentBytes: 64 * 1024 })
    for (const b of blocks) assert.deepEqual(await store.getBytes(b.cid), b.bytes)
    const more = rawBlock(100)
    await store.put(more.cid, more.bytes)
    assert.deepEqual(await segmentsOf(path), names, 'the newest segment had room: no new file')
    assert.equal((await store.verify()).corrupt.length, 0)
    await store.close()
  })

  it('a segment whose blocks are all removed is deleted; compaction merges the rest; nothing is lost', async () => {
    const path = join(dir, 'merge')
    // three records of 8000 bytes (and a 69-byte header) fill a segment
    const store = await FsBlockstore.open(path, { segmentBytes: 3 * 8069 })
    const blocks = Array.from({ length: 40 }, () => rawBlock(8000))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    const before = await segmentsOf(path)
    // the first segment holds the first blocks: remove them all, and every other block elsewhere
    for (const b of blocks.slice(0, 3)) await store.delete(b.cid)
    assert.ok(!(await segmentsOf(path)).includes(before[0]), 'emptied segment deleted')
    for (const b of blocks.slice(3).filter((_, i) => i % 2 === 0)) await store.delete(b.cid)
    const kept = blocks.slice(3).filter((_, i) => i % 2 === 1)
    const dirty = await store.diskUsage()
    assert.ok(dirty.reusableBytes >= 16 * 8000, `reusable ${dirty.reusableBytes}`)
    const clean = await store.compact()
    assert.ok(clean.fileBytes < dirty.fileBytes, `${dirty.fileBytes} -> ${clean.fileBytes}`)
    // what is left: a few free pages of the index (creating its two tables takes transactions of their own)
    assert.ok(clean.reusableBytes <= 4 * 4096, `reusable after ${clean.reusableBytes}`)
    for (const b of kept) assert.deepEqual(await store.getBytes(b.cid), b.bytes)
    assert.deepEqual(store.stats().blocks, kept.length)
    await store.close()
  })

  it('after a crash cut the newest segment mid-record, the cut entry is dropped and appends continue after whole records', async () => {
    const path = join(dir, 'cut')
    let store = await FsBlockstore.open(path)
    const blocks = Array.from({ length: 4 }, () => rawBlock(3000))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    await store.close()
    const seg = join(path, 'segments', (await segmentsOf(path))[0])
    await truncate(seg, (await stat(seg)).size - 1000)
    store = await FsBlockstore.open(path)
    assert.equal(store.has(blocks[3].cid), false)
    const next = rawBlock(4000)
    await store.put(next.cid, next.bytes)
    await store.put(blocks[3].cid, blocks[3].bytes)
    for (const b of [...blocks, next]) assert.deepEqual(await store.getBytes(b.cid, { verify: true }), b.bytes)
    await store.close()
    store = await FsBlockstore.open(path)
    assert.equal(store.stats().blocks, 5)
    assert.deepEqual((await store.verify()).corrupt, [])
    await store.close()
  })

  it('appends while earlier syncs run: every append is written in order, syncs are shared, and the durable end reaches the last byte', async () => {
    const path = join(dir, 'syncs')
    const log = await SegmentLog.open(path, { durable: true })
    const blocks = Array.from({ length: 20 }, (_, i) => rawBlock(512 * 1024 + i))
    // appends one after another without waiting for their syncs, as the store's group commit does
    const appended: Appended[] = []
    for (const b of blocks) appended.push(await log.append([{ key: b.cid.toString(), bytes: b.bytes }]))
    await Promise.all(appended.map(async a => await a.synced))
    const [seg] = [...log.sizes().keys()]
    const size = log.sizes().get(seg) as number
    const ends = new Map(log.takeDurableEnds())
    assert.equal(ends.get(seg), size, 'the durable end is the end of the last append once every sync resolved')
    blocks.forEach((b, i) => {
      assert.deepEqual(log.read(appended[i].locs[0], b.cid.toString(), b.bytes.byteLength), b.bytes)
    })
    assert.deepEqual(log.takeDurableEnds(), [], 'nothing changed since')
    await log.close()
  })

  it('refuses a bad segmentBytes with a typed error', async () => {
    await assert.rejects(FsBlockstore.open(join(dir, 'bad'), { segmentBytes: 0 }), (err: unknown) => isSwarmpackError(err, 'ERR_INVALID_ARGUMENT'))
  })
})
