/**
 * pack's chunk worker: the same packages as chunking and hashing on the calling thread, the store
 * trusting the worker's digests (no second hash), and no worker left running after an abort or a
 * failure, which surfaces as a typed error.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CoreErrorCode, DEFAULT_CHUNKER, FsBlockstore, isSwarmpackError, pack } from '../src/index.js'
import type { ChunkerParams, PackageMetadata } from '../src/index.js'
import { ChunkHasher, liveChunkWorkers } from '../src/package/chunk-hasher.js'
import { PackageErrorCode } from '../src/package/errors.js'
import { WORKER_THRESHOLD, workerPays } from '../src/package/pack.js'

const meta: PackageMetadata = { name: 'worker-test', version: '1.0.0' }
const MiB = 1024 * 1024
let tmp: string
before(async () => { tmp = await mkdtemp(join(tmpdir(), 'swarmpack-pack-worker-')) })
after(async () => { await rm(tmp, { recursive: true, force: true }) })

/** Files of the given sizes (random bytes unless `fill`) under `dir`, some in subdirectories. */
async function tree (dir: string, files: Array<[string, number] | [string, number, number]>): Promise<string> {
  for (const [path, size, fill] of files) {
    await mkdir(join(dir, path, '..'), { recursive: true })
    await writeFile(join(dir, path), fill === undefined ? randomBytes(size) : Buffer.alloc(size, fill))
  }
  await mkdir(join(dir, 'empty-dir'), { recursive: true })
  return dir
}

/** A block's bytes as one array (interface-blockstore v7 yields them in pieces). */
async function joined (pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of pieces) parts.push(p)
  return Buffer.concat(parts)
}

/** Root CID, block count and every stored block of both paths must be equal. */
async function samePackBothWays (dir: string, chunker?: ChunkerParams): Promise<void> {
  const a = new MemoryBlockstore()
  const b = new MemoryBlockstore()
  const inThread = await pack(dir, meta, { blockstore: a, workers: 0, chunker })
  const inWorker = await pack(dir, meta, { blockstore: b, workers: 1, chunker })
  assert.equal(inWorker.root.toString(), inThread.root.toString())
  assert.equal(inWorker.blocks, inThread.blocks)
  assert.equal(inWorker.totalSize, inThread.totalSize)
  const blocks = new Map<string, Uint8Array>()
  for await (const { cid, bytes } of a.getAll()) blocks.set(cid.toString(), await joined(bytes))
  let n = 0
  for await (const { cid, bytes } of b.getAll()) {
    n++
    assert.deepEqual(await joined(bytes), blocks.get(cid.toString()), `block ${cid.toString()}`)
  }
  assert.equal(n, blocks.size)
  assert.equal(liveChunkWorkers(), 0)
}

describe('pack with the chunk worker', () => {
  it('packs varied trees to the same root as the calling thread', async () => {
    const max = DEFAULT_CHUNKER.maxSize
    // empty and tiny files, sizes around maxSize and the 1 MiB read size, files over several
    // reads, long runs of one byte (every cut forced at maxSize)
    await samePackBothWays(await tree(join(tmp, 'varied'), [
      ['empty', 0], ['one', 1], ['a/tiny', 17], ['a/max-1', max - 1], ['a/max', max], ['a/max+1', max + 1],
      ['b/read', MiB], ['b/read+1', MiB + 1], ['b/3.5MiB', 3.5 * MiB], ['zeros', 2 * MiB + 5, 0],
      ['z/last-empty', 0]
    ]))
  })

  it('packs many small files, and small chunker parameters (many cuts, pieces carried over)', async () => {
    const files: Array<[string, number]> = []
    for (let i = 0; i < 400; i++) files.push([`d${i % 7}/f${i}`, (i * 977) % 20_000])
    await samePackBothWays(await tree(join(tmp, 'many'), files))
    const small = await tree(join(tmp, 'small-chunks'), [['x', MiB + 3333], ['y', 5000], ['z', 0], ['zz', 1]])
    await samePackBothWays(small, { minSize: 64, avgSize: 256, maxSize: 1024, normalization: 2 })
  })

  it('stores into FsBlockstore without hashing chunks again on this thread; the store verifies', async () => {
    const dir = await tree(join(tmp, 'fs'), [['big', 3 * MiB], ['small', 100]])
    const nodeCrypto = createRequire(import.meta.url)('node:crypto') as { hash: (...args: unknown[]) => Buffer }
    const original = nodeCrypto.hash
    let hashes = 0
    const store = await FsBlockstore.open(join(tmp, 'fs-store'))
    let r: Awaited<ReturnType<typeof pack>>
    nodeCrypto.hash = (...args: unknown[]) => { hashes++; return original(...args) }
    syncBuiltinESMExports()
    try {
      r = await pack(dir, meta, { blockstore: store, workers: 1 })
    } finally {
      nodeCrypto.hash = original
      syncBuiltinESMExports()
    }
    // only the manifest blocks are hashed here (the worker's hashing is in its own thread)
    assert.ok(r.blocks > 100)
    assert.ok(hashes <= 2, `${hashes} hashes on the main thread for ${r.blocks} blocks`)
    const report = await store.verify()
    assert.equal(report.checked, r.blocks)
    assert.deepEqual(report.corrupt, [])
    await store.close()
    const again = await pack(dir, meta, { blockstore: new MemoryBlockstore(), workers: 0 })
    assert.equal(again.root.toString(), r.root.toString())
  })

  it('an abort mid-pack rejects with ERR_ABORTED and leaves no worker running', async () => {
    const dir = await tree(join(tmp, 'abort'), [['a', 12 * MiB], ['b', 4 * MiB]])
    const controller = new AbortController()
    let runningAtAbort = 0
    await assert.rejects(pack(dir, meta, {
      blockstore: new MemoryBlockstore(),
      workers: 1,
      signal: controller.signal,
      onProgress: e => {
        if (e.type === 'swarmpack:pack:chunk' && !controller.signal.aborted) {
          runningAtAbort = liveChunkWorkers()
          controller.abort()
        }
      }
    }), (e: unknown) => isSwarmpackError(e, CoreErrorCode.ABORTED))
    assert.equal(runningAtAbort, 1)
    assert.equal(liveChunkWorkers(), 0)
  })

  it('workers unset: a worker only past the threshold and with a core free', async () => {
    assert.equal(workerPays(WORKER_THRESHOLD - 1, 0, 8), false)
    assert.equal(workerPays(WORKER_THRESHOLD, 0.5, 2), true)
    assert.equal(workerPays(WORKER_THRESHOLD, 1.5, 2), false)
    assert.equal(workerPays(10 * WORKER_THRESHOLD, 12, 2), false)
    // a package below the threshold never starts one, whatever the load
    const small = await tree(join(tmp, 'below'), [['a', 1 * MiB], ['b', 1000]])
    let most = 0
    await pack(small, meta, { blockstore: { put () {} }, onProgress: () => { most = Math.max(most, liveChunkWorkers()) } })
    assert.equal(most, 0)
    // above it, the same root whichever path this machine's load picks
    const large = await tree(join(tmp, 'above'), [['a', 1 * MiB]])
    await writeFile(join(large, 'b'), '')
    await truncate(join(large, 'b'), WORKER_THRESHOLD) // sparse: zeros, nothing written to disk
    const auto = await pack(large, meta, { blockstore: { put () {} } })
    assert.equal(liveChunkWorkers(), 0)
    assert.equal(auto.root.toString(), (await pack(large, meta, { blockstore: { put () {} }, workers: 0 })).root.toString())
  })

  it('refuses a workers value other than 0 or 1', async () => {
    await assert.rejects(pack(tmp, meta, { blockstore: new MemoryBlockstore(), workers: 2 as 1 }),
      (e: unknown) => isSwarmpackError(e, CoreErrorCode.INVALID_ARGUMENT))
  })
})

describe('chunk worker failures', () => {
  const fixture = new URL('./fixtures/failing-chunk-worker.ts', import.meta.url)

  for (const failAs of ['throw', 'exit'] as const) {
    it(`a worker that fails (${failAs}) rejects pending and later pieces with ERR_PACK_WORKER and exits`, async () => {
      const hasher = new ChunkHasher({ params: { ...DEFAULT_CHUNKER, failAs } as unknown as ChunkerParams, workerUrl: fixture })
      try {
        await hasher.submit(new Uint8Array(10), false)
        const pending = [hasher.submit(new Uint8Array(10), false), hasher.submit(new Uint8Array(10), true)]
        for (const p of pending) {
          await assert.rejects(p, (e: unknown) => isSwarmpackError(e, PackageErrorCode.WORKER) &&
            (failAs === 'exit' ? (e.details.exitCode === 3) : /broke on purpose/.test(e.message)))
        }
        await assert.rejects(hasher.submit(new Uint8Array(1), true), (e: unknown) => isSwarmpackError(e, PackageErrorCode.WORKER))
      } finally {
        await hasher.close()
      }
      assert.equal(liveChunkWorkers(), 0)
    })
  }

  it('a worker script that cannot load rejects with ERR_PACK_WORKER', async () => {
    const hasher = new ChunkHasher({ params: DEFAULT_CHUNKER, workerUrl: new URL('./fixtures/no-such-worker.js', import.meta.url) })
    try {
      await assert.rejects(hasher.submit(new Uint8Array(10), true), (e: unknown) => isSwarmpackError(e, PackageErrorCode.WORKER))
    } finally {
      await hasher.close()
    }
    assert.equal(liveChunkWorkers(), 0)
  })
})
