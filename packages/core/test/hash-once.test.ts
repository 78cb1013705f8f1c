/**
 * Hash once: a block hashed by core (verifyBlock on a receive path, rawCid in pack) is not hashed
 * again by the store's put, and nothing reaches the store unverified. Counts node:crypto's sha256
 * calls (core hashes through `crypto.hash`).
 */
import assert from 'node:assert/strict'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { rawCid, sha256Of, verifyBlock } from '../src/block.js'
import { isSwarmpackError } from '../src/errors.js'
import { FsBlockstore } from '../src/store/index.js'
import { rawBlock, tempDir } from './fixtures/blocks.js'

const nodeCrypto = createRequire(import.meta.url)('node:crypto') as { hash: (...args: unknown[]) => Buffer }
let hashes = 0

describe('hash once', () => {
  let dir: string
  let cleanup: () => Promise<void>
  const original = nodeCrypto.hash
  before(async () => {
    ({ dir, cleanup } = await tempDir('swarmpack-hash-once-'))
    nodeCrypto.hash = (...args: unknown[]) => { hashes++; return original(...args) }
    syncBuiltinESMExports()
  })
  after(async () => {
    nodeCrypto.hash = original
    syncBuiltinESMExports()
    await cleanup()
  })

  it('verifyBlock then put hashes the block once; rawCid then put too', async () => {
    const store = await FsBlockstore.open(join(dir, 'a'))
    const b = rawBlock(20_000)
    const received = new Uint8Array(b.bytes) // as from the network: a fresh buffer core never hashed
    hashes = 0
    verifyBlock(b.cid, received)
    await store.put(b.cid, received)
    assert.equal(hashes, 1)
    const chunk = new Uint8Array(30_000).fill(3)
    hashes = 0
    const cid = rawCid(chunk)
    await store.put(cid, chunk)
    assert.equal(hashes, 1)
    await store.close()
  })

  it('bytes core never hashed are hashed by put; a mismatch is refused; a refilled buffer is hashed anew', async () => {
    const store = await FsBlockstore.open(join(dir, 'b'))
    const a = rawBlock(1000)
    const other = rawBlock(1000)
    hashes = 0
    await store.put(a.cid, new Uint8Array(a.bytes))
    assert.equal(hashes, 1)
    // hashed bytes do not vouch for another CID
    const bytes = new Uint8Array(other.bytes)
    verifyBlock(other.cid, bytes)
    await assert.rejects(store.put(a.cid, bytes), (err: unknown) => isSwarmpackError(err, 'ERR_BLOCK_MISMATCH'))
    // a buffer refilled after hashing: sha256Of records the new digest, the old CID no longer passes
    const buf = new Uint8Array(other.bytes)
    const before = CID.createV1(0x55, rawCid(buf).multihash)
    buf.set(a.bytes)
    sha256Of(buf)
    await assert.rejects(store.put(before, buf), (err: unknown) => isSwarmpackError(err, 'ERR_BLOCK_MISMATCH'))
    await store.put(a.cid, buf)
    await store.close()
  })
})
