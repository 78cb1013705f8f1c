import assert from 'node:assert/strict'
import { mkdir, open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { MAX_BLOCK_SIZE } from '../src/block.js'
import { isSwarmpackError } from '../src/errors.js'
import { FsProvider } from '../src/mirror/index.js'
import { MIRROR_DESCRIPTOR, mirrorBlockPath } from '../src/mirror/layout.js'
import { StoreErrorCode } from '../src/store/index.js'
import { rawBlock, tempDir } from './fixtures/blocks.js'

const code = (c: string) => (err: unknown) => isSwarmpackError(err, c)

describe('FsProvider', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => {
    ({ dir, cleanup } = await tempDir('swarmpack-fsprov-'))
    await mkdir(join(dir, 'ipfs'), { recursive: true })
    await writeFile(join(dir, MIRROR_DESCRIPTOR), '{"layout":1}')
  })
  after(async () => { await cleanup() })

  it('refuses a directory that is not a mirror, or of an unknown layout', async () => {
    const { dir: other, cleanup: rmOther } = await tempDir()
    await assert.rejects(FsProvider.open(other), code(StoreErrorCode.MIRROR_INVALID))
    await writeFile(join(other, MIRROR_DESCRIPTOR), '{"layout":99}')
    await assert.rejects(FsProvider.open(other), code(StoreErrorCode.MIRROR_INVALID))
    await rmOther()
    assert.throws(() => new FsProvider(''), code('ERR_INVALID_ARGUMENT'))
  })

  it('returns bytes unverified, as the contract says', async () => {
    const a = rawBlock(100)
    const b = rawBlock(100)
    await writeFile(join(dir, mirrorBlockPath(a.cid)), b.bytes)
    const provider = await FsProvider.open(dir)
    assert.deepEqual(await provider.get(a.cid), b.bytes)
  })

  it('refuses an oversized file, reading at most MAX_BLOCK_SIZE + 1 bytes', async () => {
    const a = rawBlock(10)
    // a sparse 64 MiB file: reading it all would be a memory bug
    const fh = await open(join(dir, mirrorBlockPath(a.cid)), 'w')
    await fh.truncate(64 * 1024 * 1024)
    await fh.close()
    const provider = new FsProvider(dir)
    const rssBefore = process.memoryUsage().arrayBuffers
    await assert.rejects(provider.get(a.cid), code('ERR_BLOCK_TOO_LARGE'))
    assert.ok(process.memoryUsage().arrayBuffers - rssBefore < 16 * 1024 * 1024)
    // exactly MAX_BLOCK_SIZE is fine
    const c = rawBlock(10)
    await writeFile(join(dir, mirrorBlockPath(c.cid)), new Uint8Array(MAX_BLOCK_SIZE))
    assert.equal((await provider.get(c.cid)).byteLength, MAX_BLOCK_SIZE)
    // getMany skips the oversized one
    const got = []
    for await (const blk of provider.getMany([a.cid, c.cid])) got.push(blk.cid.toString())
    assert.deepEqual(got, [c.cid.toString()])
  })

  it('treats a missing block, or a directory under a block name, as ERR_NOT_FOUND', async () => {
    const a = rawBlock(10)
    const provider = new FsProvider(dir)
    await assert.rejects(provider.get(a.cid), (err: Error & { code?: string }) => err.code === 'ERR_NOT_FOUND')
    await mkdir(join(dir, mirrorBlockPath(a.cid)))
    await assert.rejects(provider.get(a.cid), code('ERR_NOT_FOUND'))
    assert.equal(await provider.has(a.cid), false)
  })

  it('reports progress and honours abort', async () => {
    const a = rawBlock(10)
    await writeFile(join(dir, mirrorBlockPath(a.cid)), a.bytes)
    const provider = new FsProvider(dir)
    const events: Array<{ size: number, source: string }> = []
    await provider.get(a.cid, { onProgress: e => events.push(e.detail as never) })
    assert.deepEqual(events, [{ cid: a.cid, size: 10, source: provider.name }])
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(provider.get(a.cid, { signal: ac.signal }), code('ERR_ABORTED'))
  })
})
