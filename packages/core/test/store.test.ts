import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { sha512 } from 'multiformats/hashes/sha2'
import { FsBlockstore, StoreErrorCode, storeProvider } from '../src/store/index.js'
import { blockKey, isBlockKey, keyToCid } from '../src/store/keys.js'
import { MAX_BLOCK_SIZE, rawCid } from '../src/block.js'
import { isSwarmpackError } from '../src/errors.js'
import { cborBlock, rawBlock, tempDir } from './fixtures/blocks.js'
import { rawBlocks, rawIndex, removeRawBlock, removeRawIndexEntry, writeRawBlock } from './fixtures/store-db.js'

const code = (c: string) => (err: unknown) => isSwarmpackError(err, c)

async function collect (gen: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of gen) parts.push(p)
  return new Uint8Array(Buffer.concat(parts))
}

describe('FsBlockstore', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => { ({ dir, cleanup } = await tempDir()) })
  after(async () => { await cleanup() })

  it('round-trips blocks across a reopen, with accounting', async () => {
    const blocks = [rawBlock(10), rawBlock(70_000), cborBlock({ hello: 'world' }), rawBlock(0)]
    let store = await FsBlockstore.open(join(dir, 'a'))
    for (const b of blocks) assert.ok((await store.put(b.cid, b.bytes)).equals(b.cid))
    const total = blocks.reduce((n, b) => n + b.bytes.byteLength, 0)
    assert.deepEqual(store.stats(), { bytes: total, blocks: 4, maxSize: Infinity, pins: 0 })
    await store.close()
    store = await FsBlockstore.open(join(dir, 'a'))
    assert.equal(store.stats().bytes, total)
    assert.equal(store.stats().blocks, 4)
    for (const b of blocks) {
      assert.equal(store.has(b.cid), true)
      assert.deepEqual(await store.getBytes(b.cid), b.bytes)
      assert.deepEqual(await collect(store.get(b.cid)), b.bytes)
    }
    // one segment file for all blocks, and the index
    assert.deepEqual((await readdir(join(dir, 'a'))).sort(), ['index.lmdb', 'index.lmdb-lock', 'segments', 'store.lock'])
    assert.deepEqual(await readdir(join(dir, 'a', 'segments')), ['00000001.seg'])
    await store.close()
  })

  it('refuses a block whose bytes do not match its CID, an oversized block and a non-sha256 CID', async () => {
    const store = await FsBlockstore.open(join(dir, 'bad'))
    const a = rawBlock(100)
    const b = rawBlock(100)
    await assert.rejects(store.put(a.cid, b.bytes), code('ERR_BLOCK_MISMATCH'))
    assert.equal(store.has(a.cid), false)
    // an iterable that grows past the cap is cut off while being read
    const big = (function * () { for (let i = 0; i < 20; i++) yield new Uint8Array(64 * 1024) })()
    await assert.rejects(store.put(a.cid, big), code('ERR_BLOCK_TOO_LARGE'))
    const d512 = await sha512.digest(b.bytes)
    await assert.rejects(store.put(CID.createV1(raw.code, d512), b.bytes), code('ERR_UNSUPPORTED_CID'))
    await assert.rejects(store.put(a.cid, 42 as never), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(store.put('bafk' as never, a.bytes), code('ERR_INVALID_ARGUMENT'))
    assert.throws(() => store.has('bafk' as never), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(store.getBytes({} as never), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(store.delete(null as never), code('ERR_INVALID_ARGUMENT'))
    assert.deepEqual(store.stats().blocks, 0)
    await store.close()
    // nothing written anywhere
    assert.deepEqual((await rawBlocks(join(dir, 'bad'))).size, 0)
  })

  it('meets the interface-blockstore contract: put/get/has/delete, many, all, iterables, identity', async () => {
    const store = await FsBlockstore.open(join(dir, 'contract'))
    const blocks = Array.from({ length: 12 }, (_, i) => rawBlock(100 + i))
    // putMany yields every key, accepting bytes as Uint8Array, sync and async iterables
    const input = blocks.map((b, i) => ({
      cid: b.cid,
      bytes: i % 3 === 0 ? b.bytes : i % 3 === 1 ? [b.bytes.subarray(0, 50), b.bytes.subarray(50)] : (async function * () { yield b.bytes })()
    }))
    const put: CID[] = []
    for await (const cid of store.putMany(input)) put.push(cid)
    assert.deepEqual(put.map(String), blocks.map(b => b.cid.toString()))
    // getMany in order, bytes as generators
    let i = 0
    for await (const pair of store.getMany(blocks.map(b => b.cid))) {
      assert.ok(pair.cid.equals(blocks[i].cid))
      assert.deepEqual(await collect(pair.bytes), blocks[i].bytes)
      i++
    }
    assert.equal(i, blocks.length)
    // getAll returns every block (under raw CIDs: the store is keyed by multihash)
    const all = new Map<string, Uint8Array>()
    for await (const pair of store.getAll()) all.set(pair.cid.toString(), await collect(pair.bytes))
    assert.equal(all.size, blocks.length)
    for (const b of blocks) assert.deepEqual(all.get(b.cid.toString()), b.bytes)
    // keyed by multihash: the same bytes under a dag-cbor CID are found
    const asCbor = CID.createV1(0x71, blocks[0].cid.multihash)
    assert.equal(store.has(asCbor), true)
    // missing block: NotFoundError name (interface-store) and ERR_NOT_FOUND code
    const missing = rawBlock(5)
    await assert.rejects(store.getBytes(missing.cid), (err: Error & { code?: string }) => err.name === 'NotFoundError' && err.code === 'ERR_NOT_FOUND')
    await assert.rejects(collect(store.get(missing.cid)), code('ERR_NOT_FOUND'))
    await assert.rejects(async () => { for await (const _ of store.getMany([blocks[0].cid, missing.cid])) { /* drain */ } }, code('ERR_NOT_FOUND'))
    // delete, deleteMany; deleting an absent block is fine
    await store.delete(blocks[0].cid)
    await store.delete(blocks[0].cid)
    assert.equal(store.has(blocks[0].cid), false)
    const deleted: string[] = []
    for await (const cid of store.deleteMany(blocks.slice(1, 4).map(b => b.cid))) deleted.push(cid.toString())
    assert.equal(deleted.length, 3)
    assert.equal(store.stats().blocks, blocks.length - 4)
    // putting an existing block again is a no-op for accounting
    const before = store.stats()
    await store.put(blocks[5].cid, blocks[5].bytes)
    assert.deepEqual(store.stats(), before)
    // identity CIDs are inline: always present, nothing written
    const id = CID.createV1(raw.code, identity.digest(new TextEncoder().encode('hi')))
    assert.equal(store.has(id), true)
    assert.deepEqual(await store.getBytes(id), new TextEncoder().encode('hi'))
    await store.put(id, new TextEncoder().encode('hi'))
    assert.deepEqual(store.stats(), before)
    // abort
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(store.getBytes(blocks[5].cid, { signal: ac.signal }), code('ERR_ABORTED'))
    await assert.rejects(store.put(missing.cid, missing.bytes, { signal: ac.signal }), code('ERR_ABORTED'))
    await store.close()
    await assert.rejects(store.getBytes(blocks[5].cid), code(StoreErrorCode.STORE_CLOSED))
  })

  it('an aborted read rejects with ERR_ABORTED; first reads persist recency before close returns', async () => {
    const path = join(dir, 'read-abort')
    let store = await FsBlockstore.open(path, { recencyInterval: 0 })
    const blocks = Array.from({ length: 64 }, (_, i) => rawBlock(20_000 + i))
    await Promise.all(blocks.map(async b => await store.put(b.cid, b.bytes)))
    await store.close()
    const written = await rawIndex(path)
    assert.equal(written.size, blocks.length)
    store = await FsBlockstore.open(path, { recencyInterval: 0 })
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(store.getBytes(blocks[0].cid, { signal: ac.signal }), code('ERR_ABORTED'))
    await new Promise(resolve => setTimeout(resolve, 5))
    // the store still works, and every block read returns its bytes
    for (const b of blocks) assert.deepEqual(await store.getBytes(b.cid), b.bytes)
    await store.close()
    const touched = await rawIndex(path)
    for (const b of blocks) {
      const key = b.cid.toString()
      assert.ok(touched.get(key)![1] > written.get(key)![1], `${key} touched`)
      assert.equal(touched.get(key)![0], b.bytes.byteLength)
    }
  })

  it('accepts non-swarmpack codecs with sha2-256 (e.g. dag-pb from Helia)', async () => {
    const store = await FsBlockstore.open(join(dir, 'dagpb'))
    const bytes = new TextEncoder().encode('not really dag-pb')
    const cid = CID.createV1(0x70, await sha256.digest(bytes))
    await store.put(cid, bytes)
    assert.deepEqual(await store.getBytes(cid), bytes)
    await store.close()
  })

  it('emits block:added once per new block', async () => {
    const store = await FsBlockstore.open(join(dir, 'events'))
    const seen: string[] = []
    const off = store.onBlockAdded(({ cid, size }) => { seen.push(`${cid.toString()}:${size}`) })
    const b = rawBlock(33)
    await Promise.all([store.put(b.cid, b.bytes), store.put(b.cid, b.bytes)])
    await store.put(b.cid, b.bytes)
    assert.deepEqual(seen, [`${b.cid.toString()}:33`])
    // a throwing listener neither breaks the put nor the process
    const offBad = store.onBlockAdded(() => { throw new Error('listener bug') })
    const x = rawBlock(34)
    await store.put(x.cid, x.bytes)
    offBad()
    off()
    seen.length = 1
    const c = rawBlock(3)
    await store.put(c.cid, c.bytes)
    assert.equal(seen.length, 1)
    await store.close()
  })

  it('heals an index entry whose record is wiped or whose segment is cut; a record without an entry is dead space', async () => {
    const path = join(dir, 'index')
    let store = await FsBlockstore.open(path)
    const blocks = Array.from({ length: 5 }, (_, i) => rawBlock(200 + i))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    await store.close()
    // changed behind the store's back while it was closed: one record wiped, one index entry lost,
    // and the segment cut inside the last record
    await removeRawBlock(path, blocks[0].cid.toString())
    await removeRawIndexEntry(path, blocks[1].cid.toString())
    const seg = join(path, 'segments', '00000001.seg')
    await truncate(seg, (await stat(seg)).size - 10)
    store = await FsBlockstore.open(path)
    // the cut record's entry points past the end of the file: dropped on open
    assert.equal(store.has(blocks[4].cid), false)
    assert.equal(store.has(blocks[1].cid), false)
    assert.deepEqual([store.stats().blocks, store.stats().bytes], [3, 200 + 202 + 203])
    // the wiped record is caught by its header on the first read, and removed
    await assert.rejects(store.getBytes(blocks[0].cid), code('ERR_CORRUPT_BLOCK'))
    assert.equal(store.has(blocks[0].cid), false)
    assert.deepEqual([store.stats().blocks, store.stats().bytes], [2, 202 + 203])
    const report = await store.verify()
    assert.deepEqual([report.checked, report.corrupt], [2, []])
    // the unindexed record is dead space, which compaction gives back
    const usage = await store.diskUsage()
    assert.ok(usage.reusableBytes >= 200 + 201, `reusable ${usage.reusableBytes}`)
    const after = await store.compact()
    assert.ok(after.fileBytes < usage.fileBytes)
    for (const b of blocks.slice(2, 4)) assert.deepEqual(await store.getBytes(b.cid), b.bytes)
    await store.close()
    assert.equal((await rawIndex(path)).size, 2)
  })

  it('refuses a directory of the old one-file-per-block layout, and a path it cannot create, with typed errors', async () => {
    const path = join(dir, 'old')
    await mkdir(join(path, 'blocks', 'ab'), { recursive: true })
    await assert.rejects(FsBlockstore.open(path), (err: unknown) => isSwarmpackError(err, StoreErrorCode.STORE_FORMAT) && /remove that directory/.test((err as Error).message))
    await rm(join(path, 'blocks'), { recursive: true })
    // and the all-in-LMDB layout before the segment log
    await writeFile(join(path, 'store.lmdb'), 'x')
    await assert.rejects(FsBlockstore.open(path), (err: unknown) => isSwarmpackError(err, StoreErrorCode.STORE_FORMAT) && /remove that file/.test((err as Error).message))
    await rm(join(path, 'store.lmdb'))
    const store = await FsBlockstore.open(path)
    await store.close()
    await writeFile(join(dir, 'a-file'), 'not a directory')
    await assert.rejects(FsBlockstore.open(join(dir, 'a-file')), (err: unknown) => isSwarmpackError(err, StoreErrorCode.STORE_IO) && typeof (err as { details: { errno?: string } }).details.errno === 'string')
  })

  it('refuses a damaged database file with ERR_STORE_CORRUPT instead of crashing in native code', async () => {
    const path = join(dir, 'damaged')
    const store = await FsBlockstore.open(path)
    const b = rawBlock(100)
    await store.put(b.cid, b.bytes)
    await store.close()
    const file = join(path, 'index.lmdb')
    const good = await readFile(file)
    for (const bad of [Buffer.alloc(64 * 1024, 7), Buffer.from('short'), good.subarray(0, 4096), Buffer.concat([good.subarray(0, 4096), Buffer.alloc(good.length - 4096)])]) {
      await writeFile(file, bad)
      await assert.rejects(FsBlockstore.open(path), code(StoreErrorCode.STORE_CORRUPT))
    }
    await writeFile(file, good)
    const again = await FsBlockstore.open(path)
    assert.deepEqual(await again.getBytes(b.cid), b.bytes)
    await again.close()
  })

  it('refuses a second opener and reopens after close; reports a size-changed block as corrupt', async () => {
    const path = join(dir, 'lock')
    const store = await FsBlockstore.open(path)
    await assert.rejects(FsBlockstore.open(path), code(StoreErrorCode.STORE_LOCKED))
    const b = rawBlock(1000)
    await store.put(b.cid, b.bytes)
    await store.close()
    // truncate the block behind the store's back
    assert.equal((await rawBlocks(path)).get(b.cid.toString())?.byteLength, 1000)
    await writeRawBlock(path, b.cid.toString(), b.bytes.subarray(0, 10))
    const again = await FsBlockstore.open(path)
    await assert.rejects(again.getBytes(b.cid), code('ERR_CORRUPT_BLOCK'))
    assert.equal(again.has(b.cid), false)
    assert.equal(again.stats().bytes, 0)
    await again.close()
    assert.equal((await rawBlocks(path)).size, 0)
  })

  it('serves as a core Provider', async () => {
    const store = await FsBlockstore.open(join(dir, 'provider'))
    const a = rawBlock(64)
    const b = rawBlock(65)
    await store.put(a.cid, a.bytes)
    const provider = storeProvider(store)
    assert.match(provider.name, /^store:/)
    const events: string[] = []
    assert.deepEqual(await provider.get(a.cid, { onProgress: e => events.push(e.type) }), a.bytes)
    assert.deepEqual(events, ['swarmpack:provider:block'])
    assert.equal(await provider.has?.(b.cid), false)
    await assert.rejects(provider.get(b.cid), code('ERR_NOT_FOUND'))
    const got: string[] = []
    for await (const blk of provider.getMany!([a.cid, b.cid])) got.push(blk.cid.toString())
    assert.deepEqual(got, [a.cid.toString()])
    await store.close()
  })

  it('readInto reads a block into the caller\'s buffer: sizes, a too-small buffer, misses, damage, identity, the provider', async () => {
    const path = join(dir, 'read-into')
    let store = await FsBlockstore.open(path)
    const blocks = Array.from({ length: 3 }, (_, i) => rawBlock(1000 + i))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    const target = new Uint8Array(4096).fill(0xee)
    assert.equal(await store.readInto(blocks[1].cid, target), 1001)
    assert.deepEqual(target.subarray(0, 1001), blocks[1].bytes)
    assert.equal(target[1001], 0xee, 'nothing past the block is written')
    // too small: nothing read, the size is returned
    const small = new Uint8Array(1000).fill(0xee)
    assert.equal(await store.readInto(blocks[1].cid, small), 1001)
    assert.ok(small.every(x => x === 0xee))
    assert.equal(await store.readInto(rawBlock(10).cid, target).catch((e: unknown) => e instanceof Error ? (e as { code?: string }).code : e), 'ERR_NOT_FOUND')
    await assert.rejects(store.readInto(blocks[0].cid, 'no' as unknown as Uint8Array), code('ERR_INVALID_ARGUMENT'))
    const inline = CID.createV1(raw.code, identity.digest(new Uint8Array([1, 2, 3])))
    assert.equal(await store.readInto(inline, target), 3)
    assert.deepEqual(target.subarray(0, 3), new Uint8Array([1, 2, 3]))
    // the local store's provider reads into buffers too; a memory store's does not
    const provider = storeProvider(store)
    assert.equal(await provider.readInto?.(blocks[2].cid, target), 1002)
    assert.deepEqual(target.subarray(0, 1002), blocks[2].bytes)
    assert.equal(storeProvider({ has: () => true, getBytes: async () => new Uint8Array(0) }).readInto, undefined)
    await store.close()
    // a wiped record is caught by its header, as with getBytes, and removed
    await removeRawBlock(path, blocks[0].cid.toString())
    store = await FsBlockstore.open(path)
    await assert.rejects(store.readInto(blocks[0].cid, target), code('ERR_CORRUPT_BLOCK'))
    assert.equal(store.has(blocks[0].cid), false)
    await store.close()
  })

  it('rawCid sanity: MAX_BLOCK_SIZE blocks are fine', async () => {
    const store = await FsBlockstore.open(join(dir, 'max'))
    const bytes = new Uint8Array(MAX_BLOCK_SIZE).fill(7)
    const cid = rawCid(bytes)
    await store.put(cid, bytes)
    assert.equal((await store.getBytes(cid)).byteLength, MAX_BLOCK_SIZE)
    await store.close()
  })

  it('block file names: the cheap shape test agrees with full parsing', () => {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
    for (let i = 0; i < 2000; i++) {
      const key = blockKey(rawBlock(i % 50).cid)
      assert.ok(isBlockKey(key), key)
      let name = 'bafkrei'
      for (let j = 0; j < 52; j++) name += alphabet[(i * 7919 + j * 104729 + ((i * j) >> 3)) % 32]
      if (isBlockKey(name)) assert.equal(keyToCid(name)?.toString(), name)
    }
    // the key is the base32 string of the raw CIDv1, whatever the codec and hash
    for (let i = 0; i < 300; i++) {
      const b = rawBlock(i)
      const cid = i % 3 === 0 ? b.cid : i % 3 === 1 ? CID.createV1(0x71, b.cid.multihash) : CID.createV1(raw.code, identity.digest(b.bytes.subarray(0, i % 40)))
      assert.equal(blockKey(cid), CID.createV1(raw.code, cid.multihash).toString())
    }
    assert.equal(isBlockKey('.swarmpack-tmp-x'), false)
    assert.equal(isBlockKey(blockKey(rawBlock(1).cid).toUpperCase()), false)
  })
})
