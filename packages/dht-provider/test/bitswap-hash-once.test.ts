/**
 * Hash once on the Bitswap receive path: every block received into an FsBlockstore is hashed one
 * time in the fetching process (Bitswap's CID check, which the verification and the store's put
 * reuse), not three (review: cidOfPayload, verifyBlock and the store's own check). Counts SHA-256
 * runs over block-sized inputs, through both node:crypto entry points.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { FsBlockstore } from '@swarmpack/core'
import { connect, createPeer, putAll, randomBlocks, stopPeers } from './bitswap-helpers.js'
import type { TestPeer } from './bitswap-helpers.js'

const BLOCK = 64 * 1024
type Hash = { update: (data: Uint8Array) => Hash }
const nodeCrypto = createRequire(import.meta.url)('node:crypto') as {
  hash: (alg: string, data: Uint8Array, enc: string) => Buffer
  createHash: (alg: string) => Hash
}

describe('bitswap: hash once', () => {
  const peers: TestPeer[] = []
  const cleanups: Array<() => Promise<void>> = []
  after(async () => { await stopPeers(...peers); for (const c of cleanups) await c() })

  it('hashes each received block once on its way into the store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swarmpack-bitswap-hash-'))
    const store = await FsBlockstore.open(dir)
    cleanups.push(async () => { await store.close(); await rm(dir, { recursive: true, force: true }) })
    const provider = await createPeer()
    const fetcher = await createPeer({ blockstore: store as never })
    peers.push(provider, fetcher)
    const blocks = randomBlocks(20, BLOCK)
    await putAll(provider.blockstore, blocks)
    await connect(fetcher, provider)

    let hashed = 0
    const { hash, createHash } = nodeCrypto
    nodeCrypto.hash = (alg, data, enc) => { if (alg === 'sha256' && data.byteLength >= BLOCK) hashed++; return hash(alg, data, enc) }
    nodeCrypto.createHash = (alg) => {
      const h = createHash(alg)
      const update = h.update.bind(h)
      h.update = (data) => { if (alg === 'sha256' && data.byteLength >= BLOCK) hashed++; return update(data) }
      return h
    }
    syncBuiltinESMExports()
    try {
      const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId] })
      let n = 0
      for await (const _ of session.getMany(blocks.map(b => b.cid))) n++
      await session.close()
      assert.equal(n, blocks.length)
      for (const b of blocks) assert.equal(store.has(b.cid), true)
    } finally {
      nodeCrypto.hash = hash
      nodeCrypto.createHash = createHash
      syncBuiltinESMExports()
    }
    // the provider serves without hashing; the fetcher hashes each block exactly once
    assert.equal(hashed, blocks.length)
  })
})
