/**
 * Protocol negotiation cost of Bitswap streams, on real nodes. libp2p 3 negotiates every new
 * stream in full (multistream-select waits for the remote's answer before the stream is handed
 * out): one round trip per new stream. Bitswap pays it once per peer, because it keeps one
 * outbound stream per peer and sends every message on it.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { BITSWAP_PROTOCOL } from '../src/bitswap/index.js'
import { connect, createNode, createPeer, putAll, randomBlocks, stopPeers, type TestPeer } from './bitswap-helpers.js'
import type { Libp2p } from '@libp2p/interface'

/** Counts the Bitswap streams a node opens (a wrapper around the real dialProtocol). */
function countBitswapDials (node: Libp2p): { count: number } {
  const counter = { count: 0 }
  const dial = node.dialProtocol.bind(node)
  node.dialProtocol = async (peer, protocols, options) => {
    if ([protocols].flat().includes(BITSWAP_PROTOCOL)) counter.count++
    return await dial(peer, protocols, options)
  }
  return counter
}

describe('bitswap: streams and protocol negotiation', () => {
  const peers: TestPeer[] = []
  const nodes: Libp2p[] = []
  after(async () => {
    await stopPeers(...peers)
    await Promise.all(nodes.map(async n => { await n.stop() }))
  })

  it('libp2p 3 negotiates a new stream fully, whatever negotiateFully says', async () => {
    // with optimistic select a dial of a protocol the remote lacks would hand out a stream and
    // fail only on first use; libp2p 3.3 waits for the remote's "na" and rejects at once. If
    // this starts failing, libp2p implements optimistic select and Bitswap could use it.
    const a = await createNode(); const b = await createNode()
    nodes.push(a, b)
    await connect(a, b)
    await assert.rejects(a.dialProtocol(b.peerId, '/swarmpack/test/absent/1.0.0', { negotiateFully: false }),
      (err: Error) => err.name === 'UnsupportedProtocolError')
  })

  it('a fetch of many blocks opens one stream each way, and a second session reuses them', async () => {
    const provider = await createPeer()
    const fetcher = await createPeer()
    peers.push(provider, fetcher)
    const fromFetcher = countBitswapDials(fetcher.libp2p)
    const fromProvider = countBitswapDials(provider.libp2p)
    const blocks = randomBlocks(80, 32 * 1024)
    await putAll(provider.blockstore, blocks)
    await connect(fetcher, provider)

    for (const part of [blocks.slice(0, 60), blocks.slice(60)]) {
      const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId] })
      let got = 0
      for await (const _ of session.getMany(part.map(b => b.cid))) got++
      assert.equal(got, part.length)
      await session.close()
    }
    // wants went out in many messages and blocks came back in many: each over the one stream
    assert.ok(provider.bitswap.stats().blocksSent === blocks.length)
    assert.equal(fromFetcher.count, 1, 'Bitswap streams the fetcher opened')
    assert.equal(fromProvider.count, 1, 'Bitswap streams the provider opened')
  })
})
