/**
 * core's SHA-256 worker: digests as node:crypto computes them, views of the batch's own memory
 * that the block store trusts without hashing again (the calling thread hashes nothing), typed
 * failures, and the thread always gone once `close()` resolves.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { rawCid } from '../src/block.js'
import { isSwarmpackError } from '../src/errors.js'
import { HashErrorCode, Sha256Worker, liveSha256Workers } from '../src/hash/index.js'
import { FsBlockstore } from '../src/store/index.js'
import { tempDir } from './fixtures/blocks.js'

const nodeCrypto = createRequire(import.meta.url)('node:crypto') as { hash: (...args: unknown[]) => Buffer }

/** A batch buffer holding `sizes` random ranges back to back, and its ranges. */
function batch (sizes: number[]): { bytes: Uint8Array, ranges: Uint32Array, copies: Uint8Array[] } {
  const total = sizes.reduce((a, b) => a + b, 0)
  const bytes = new Uint8Array(total)
  const ranges: number[] = []
  const copies: Uint8Array[] = []
  let off = 0
  for (const n of sizes) {
    const r = new Uint8Array(randomBytes(n))
    bytes.set(r, off)
    ranges.push(off, n)
    copies.push(r)
    off += n
  }
  return { bytes, ranges: Uint32Array.from(ranges), copies }
}

describe('SHA-256 worker', () => {
  it('hashes every range of every batch, in order, and the store trusts those digests', async () => {
    const { dir, cleanup } = await tempDir('swarmpack-sha256-worker-')
    const worker = new Sha256Worker()
    const store = await FsBlockstore.open(join(dir, 'store'))
    const original = nodeCrypto.hash
    let hashes = 0
    try {
      const batches = [batch([1, 20_000, 0, 65_536]), batch([300_000]), batch([5, 6, 7])]
      // several in flight at once: replies must come back in request order
      const replies = await Promise.all(batches.map(async b => await worker.hashRanges(b.bytes, b.ranges)))
      assert.equal(batches[0].bytes.byteLength, 0, 'the buffer was moved to the worker')
      nodeCrypto.hash = (...args: unknown[]) => { hashes++; return original(...args) }
      syncBuiltinESMExports()
      for (const [i, reply] of replies.entries()) {
        assert.equal(reply.length, batches[i].copies.length)
        for (const [j, r] of reply.entries()) {
          assert.deepEqual(r.bytes, batches[i].copies[j])
          assert.deepEqual(r.digest, new Uint8Array(createHash('sha256').update(batches[i].copies[j]).digest()))
        }
      }
      // put the hashed views: the store compares against the worker's digest, hashing nothing here
      const cids = replies[0].concat(replies[1]).map(r => ({ cid: rawCid(new Uint8Array(r.bytes)), bytes: r.bytes }))
      hashes = 0
      for (const c of cids) await store.put(c.cid, c.bytes)
      assert.equal(hashes, 0)
    } finally {
      nodeCrypto.hash = original
      syncBuiltinESMExports()
      await worker.close()
      await store.close()
      await cleanup()
    }
    assert.equal(liveSha256Workers(), 0)
  })

  it('rejects pending batches with ERR_ABORTED on abort and terminates the thread', async () => {
    const ac = new AbortController()
    const worker = new Sha256Worker({ signal: ac.signal })
    const pending = [1, 2, 3].map(async () => await worker.hashRanges(new Uint8Array(8 * 1024 * 1024), Uint32Array.from([0, 8 * 1024 * 1024])))
    ac.abort()
    for (const p of pending) await assert.rejects(p, (err: unknown) => isSwarmpackError(err, 'ERR_ABORTED'))
    await assert.rejects(worker.hashRanges(new Uint8Array(1), Uint32Array.from([0, 1])), (err: unknown) => isSwarmpackError(err, 'ERR_ABORTED'))
    await worker.close()
    assert.equal(liveSha256Workers(), 0)
  })

  it('turns a worker that crashes or exits into ERR_HASH_WORKER for every pending batch', async () => {
    for (const source of ['throw new Error("boom")', 'process.exit(3)']) {
      const worker = new Sha256Worker({ workerUrl: new URL(`data:text/javascript,${encodeURIComponent(source)}`) })
      const pending = worker.hashRanges(new Uint8Array(16), Uint32Array.from([0, 16]))
      await assert.rejects(pending, (err: unknown) => isSwarmpackError(err, HashErrorCode.WORKER))
      await assert.rejects(worker.hashRanges(new Uint8Array(1), Uint32Array.from([0, 1])), (err: unknown) => isSwarmpackError(err, HashErrorCode.WORKER))
      await worker.close()
    }
    assert.equal(liveSha256Workers(), 0)
  })

  it('close() terminates an idle worker and is idempotent', async () => {
    const worker = new Sha256Worker()
    assert.equal(liveSha256Workers(), 1)
    await worker.close()
    await worker.close()
    assert.equal(liveSha256Workers(), 0)
    await assert.rejects(worker.hashRanges(new Uint8Array(1), Uint32Array.from([0, 1])), (err: unknown) => isSwarmpackError(err, 'ERR_INVALID_ARGUMENT'))
  })
})
