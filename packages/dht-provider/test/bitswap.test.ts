import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
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

  it('looks providers up again after rediscoverAfter: a root announced after the first lookup is found on a later get', async () => {
    const provider = await createPeer()
    const fetcher = await createPeer()
    peers.push(provider, fetcher)
    const [block] = randomBlocks(1, 1000)
    await putAll(provider.blockstore, [block])
    await connect(fetcher, provider)
    let announced = false
    const lookups: number[] = []
    const session = fetcher.bitswap.createSession({
      root: block.cid,
      rediscoverAfter: 200,
      // the provider "announces" only after the first lookup
      findProviders: async function * () { lookups.push(Date.now()); if (announced) yield provider.libp2p.peerId }
    })
    await assert.rejects(session.get(block.cid), (err: any) => err.code === 'ERR_NOT_FOUND')
    announced = true
    // within rediscoverAfter the miss stands (no lookup storm) ...
    await assert.rejects(session.get(block.cid), (err: any) => err.code === 'ERR_NOT_FOUND')
    assert.equal(lookups.length, 1)
    // ... after it, a get looks again and finds the provider
    await new Promise(resolve => setTimeout(resolve, 250))
    assert.deepEqual(await session.get(block.cid), block.bytes)
    assert.equal(lookups.length, 2)
    await session.close()
  })

  it('skips blocks nobody has in getMany, refuses CIDs it cannot verify, and rejects after close', async () => {
    const provider = await createPeer()
    const fetcher = await createPeer()
    peers.push(provider, fetcher)
    const blocks = randomBlocks(5, 1000)
    const absent = randomBlocks(2, 1000)
    await putAll(provider.blockstore, blocks)
    await connect(fetcher, provider)
    const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId] })
    const got: string[] = []
    for await (const b of session.getMany([...blocks, ...absent].map(b => b.cid))) got.push(b.cid.toString())
    assert.deepEqual(got.sort(), blocks.map(b => b.cid.toString()).sort())
    // a second get of a stored block is answered locally
    const sources: string[] = []
    await session.get(blocks[0].cid, { onProgress: (evt) => { if (evt.type === 'swarmpack:provider:block') sources.push(evt.detail.source) } })
    assert.deepEqual(sources, ['local'])
    // dag-pb is not something swarmpack verifies, so it is never asked for
    const dagPb = CID.createV1(0x70, blocks[0].cid.multihash)
    await assert.rejects(session.get(dagPb), { code: 'ERR_UNSUPPORTED_CID' })
    await session.close()
    await assert.rejects(session.get(absent[0].cid), { code: 'ERR_BITSWAP_SESSION_CLOSED' })
    await fetcher.bitswap.stop()
    assert.throws(() => fetcher.bitswap.createSession(), { code: 'ERR_BITSWAP_NOT_STARTED' })
  })
})
