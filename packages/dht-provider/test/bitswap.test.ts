import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { connect, createPeer, putAll, randomBlocks, readAll, stopPeers } from './bitswap-helpers.js'
import type { TestPeer } from './bitswap-helpers.js'

describe('bitswap: two nodes', () => {
  const peers: TestPeer[] = []
  after(async () => { await stopPeers(...peers) })

  it('fetches blocks from a connected peer, verifies and stores them', async () => {
    const provider = await createPeer()
    const fetcher = await createPeer()
    peers.push(provider, fetcher)
    const blocks = randomBlocks(40, 64 * 1024)
    await putAll(provider.blockstore, blocks)
    await connect(fetcher, provider)

    const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId] })
    const progress: string[] = []
    const one = await session.get(blocks[0].cid, { onProgress: (evt) => { if (evt.type === 'swarmpack:provider:block') progress.push(evt.detail.source) } })
    assert.deepEqual(one, blocks[0].bytes)
    assert.deepEqual(progress, [provider.libp2p.peerId.toString()])

    const got = new Map<string, Uint8Array>()
    for await (const b of session.getMany(blocks.slice(1).map(b => b.cid))) {
      assert.equal(b.source, provider.libp2p.peerId.toString())
      got.set(b.cid.toString(), b.bytes)
    }
    assert.equal(got.size, blocks.length - 1)
    for (const b of blocks.slice(1)) assert.deepEqual(got.get(b.cid.toString()), b.bytes)
    for (const b of blocks) assert.deepEqual(await readAll(fetcher.blockstore, b.cid), b.bytes)

    const stats = session.stats()
    assert.equal(stats.length, 1)
    assert.equal(stats[0].blocks, blocks.length)
    assert.equal(stats[0].bytes, blocks.length * 64 * 1024)
    assert.equal(provider.bitswap.stats().blocksSent, blocks.length)
    await session.close()
  })
})
