/**
 * Bitswap sessions against several real providers on 127.0.0.1: spreading, corrupt providers,
 * a provider lacking blocks, and a provider leaving mid-fetch.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { connect, createPeer, putAll, randomBlocks, readAll, stopPeers, waitUntil } from './bitswap-helpers.js'
import type { TestBlock, TestPeer } from './bitswap-helpers.js'
import type { ProviderProgressEvents } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'

/** A blockstore that returns altered bytes: a provider with rotten storage (or a liar). */
class CorruptBlockstore extends MemoryBlockstore {
  override async * get (cid: CID): AsyncGenerator<Uint8Array> {
    for await (const chunk of super.get(cid)) {
      const copy = chunk.slice()
      copy[0] ^= 0xff
      yield copy
    }
  }
}

async function fetchAll (peer: TestPeer, blocks: TestBlock[], session: ReturnType<TestPeer['bitswap']['createSession']>, onProgress?: (evt: ProviderProgressEvents) => void): Promise<Map<string, string>> {
  const sources = new Map<string, string>()
  for await (const b of session.getMany(blocks.map(b => b.cid), { onProgress })) sources.set(b.cid.toString(), b.source)
  assert.equal(sources.size, blocks.length, 'every block arrived')
  for (const b of blocks) assert.deepEqual(await readAll(peer.blockstore, b.cid), b.bytes)
  return sources
}

describe('bitswap: several providers', () => {
  const peers: TestPeer[] = []
  after(async () => { await stopPeers(...peers) })

  it('spreads one fetch across three providers', async () => {
    const blocks = randomBlocks(90, 128 * 1024)
    const providers = await Promise.all([createPeer(), createPeer(), createPeer()])
    const fetcher = await createPeer()
    peers.push(...providers, fetcher)
    for (const p of providers) { await putAll(p.blockstore, blocks); await connect(fetcher, p) }
    const session = fetcher.bitswap.createSession({ peers: providers.map(p => p.libp2p.peerId), maxWantsPerPeer: 8 })
    const sources = await fetchAll(fetcher, blocks, session)
    const stats = session.stats()
    assert.equal(stats.reduce((n, s) => n + s.blocks, 0), blocks.length)
    for (const p of providers) {
      const share = stats.find(s => s.peer === p.libp2p.peerId.toString())
      assert.ok(share !== undefined && share.blocks > 0, 'each provider served part of the fetch')
    }
    assert.equal(new Set(sources.values()).size, 3)
    await session.close()
  })

  it('bans a provider that sends a corrupted block and finishes from another', async () => {
    const blocks = randomBlocks(30, 32 * 1024)
    const honest = await createPeer()
    const liarStore = new CorruptBlockstore()
    const liar = await createPeer({ blockstore: liarStore })
    const fetcher = await createPeer()
    peers.push(honest, liar, fetcher)
    await putAll(honest.blockstore, blocks)
    await putAll(liarStore, blocks)
    await connect(fetcher, honest)
    await connect(fetcher, liar)
    // the liar first, so it surely gets asked
    const session = fetcher.bitswap.createSession({ peers: [liar.libp2p.peerId, honest.libp2p.peerId] })
    const sources = await fetchAll(fetcher, blocks, session)
    assert.ok(fetcher.bitswap.isBanned(liar.libp2p.peerId), 'the liar is banned')
    assert.ok([...sources.values()].every(s => s === honest.libp2p.peerId.toString()))
    assert.equal(fetcher.libp2p.getConnections(liar.libp2p.peerId).length, 0, 'the liar was hung up on')
    assert.ok(fetcher.bitswap.stats().banned.some(b => b.peer === liar.libp2p.peerId.toString()))
    // and it is not let back in: a new connection is hung up on at once
    await connect(fetcher, liar).catch(() => {})
    await waitUntil(() => fetcher.libp2p.getConnections(liar.libp2p.peerId).length === 0, 'the banned peer was hung up on again')
    await session.close()
  })

  it('takes the blocks one peer lacks from the peer that has them, with no duplicates', async () => {
    const blocks = randomBlocks(40, 16 * 1024)
    const partial = await createPeer()
    const full = await createPeer()
    const fetcher = await createPeer()
    peers.push(partial, full, fetcher)
    await putAll(partial.blockstore, blocks.slice(0, 10))
    await putAll(full.blockstore, blocks)
    await connect(fetcher, partial)
    await connect(fetcher, full)
    // the wantTimeout is longer than the test may run: only Have/DontHave answers decide who is
    // asked (no wall-clock bound, which load would break)
    const session = fetcher.bitswap.createSession({ peers: [partial.libp2p.peerId, full.libp2p.peerId], wantTimeout: 3_600_000 })
    const sources = await fetchAll(fetcher, blocks, session)
    for (const b of blocks.slice(10)) assert.equal(sources.get(b.cid.toString()), full.libp2p.peerId.toString())
    assert.ok(partial.bitswap.stats().blocksSent <= 10, 'the partial peer only sent blocks it had')
    assert.equal(fetcher.bitswap.stats().duplicateBlocks, 0)
    await session.close()
  })

  it('finishes from the remaining provider when one stops mid-fetch', async () => {
    const blocks = randomBlocks(120, 256 * 1024)
    const leaving = await createPeer()
    const staying = await createPeer()
    const fetcher = await createPeer()
    peers.push(leaving, staying, fetcher)
    await putAll(leaving.blockstore, blocks)
    await putAll(staying.blockstore, blocks)
    await connect(fetcher, leaving)
    await connect(fetcher, staying)
    const session = fetcher.bitswap.createSession({ peers: [leaving.libp2p.peerId, staying.libp2p.peerId], wantTimeout: 2000 })
    let received = 0
    let stopped: Promise<void> | undefined
    for await (const b of session.getMany(blocks.map(b => b.cid))) {
      assert.ok(b.bytes.byteLength > 0)
      received++
      if (received === 10) stopped = stopPeers(leaving)
    }
    await stopped
    assert.equal(received, blocks.length)
    for (const b of blocks) assert.deepEqual(await readAll(fetcher.blockstore, b.cid), b.bytes)
    const fromStaying = session.stats().find(s => s.peer === staying.libp2p.peerId.toString())
    assert.ok(fromStaying !== undefined && fromStaying.blocks > blocks.length / 2)
    await session.close()
  })
})
