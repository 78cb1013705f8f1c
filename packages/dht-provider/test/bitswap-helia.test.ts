/**
 * Interop with Helia 7's own Bitswap (@helia/bitswap) over TCP on 127.0.0.1: Helia fetches blocks
 * our node serves, and our node fetches blocks Helia holds. Helia is built from its light core
 * with explicit libp2p options (tcp, noise, yamux, identify; no DHT, no bootstrap, no HTTP
 * routing), so it never dials outside loopback.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { encodeCborBlock } from '@swarmpack/core'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { createHeliaLight } from 'helia'
import { connect, createPeer, loopbackLibp2pOptions, putAll, randomBlocks, readAll, stopPeers } from './bitswap-helpers.js'
import type { TestBlock, TestPeer } from './bitswap-helpers.js'
import type { HeliaWithLibp2p } from '@helia/libp2p'

async function createTestHelia (): Promise<HeliaWithLibp2p<any>> {
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ blockstore: new MemoryBlockstore() }), loopbackLibp2pOptions()))
  await helia.start()
  return helia
}

async function heliaGet (helia: HeliaWithLibp2p<any>, block: TestBlock): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const c of helia.blockstore.get(block.cid, { signal: AbortSignal.timeout(20_000) })) chunks.push(c)
  return new Uint8Array(Buffer.concat(chunks))
}

describe('bitswap: interop with Helia 7', () => {
  let helia: HeliaWithLibp2p<any>
  let ours: TestPeer
  before(async () => {
    helia = await createTestHelia()
    ours = await createPeer()
  })
  after(async () => {
    await stopPeers(ours)
    await helia.stop()
  })

  it('Helia fetches blocks from our node', async () => {
    const cbor = encodeCborBlock({ name: 'swarmpack-interop', size: 3 })
    const blocks: TestBlock[] = [...randomBlocks(6, 200 * 1024), randomBlocks(1, 900 * 1024)[0], randomBlocks(1, 300)[0], cbor]
    await putAll(ours.blockstore, blocks)
    await connect(helia.libp2p, ours.libp2p)
    const got = await Promise.all(blocks.map(async b => heliaGet(helia, b)))
    for (let i = 0; i < blocks.length; i++) assert.deepEqual(got[i], blocks[i].bytes)
    const served = ours.bitswap.stats().peers.find(p => p.peer === helia.libp2p.peerId.toString())
    assert.ok(served !== undefined && served.blocksSent === blocks.length, 'every block came from our node')
  })

  it('our node fetches blocks Helia holds', async () => {
    const blocks = [...randomBlocks(12, 256 * 1024), ...randomBlocks(4, 1024 * 1024), ...randomBlocks(3, 100)]
    for (const b of blocks) await helia.blockstore.put(b.cid, b.bytes)
    if (helia.libp2p.getConnections(ours.libp2p.peerId).length === 0) await connect(ours.libp2p, helia.libp2p)
    const session = ours.bitswap.createSession({ peers: [helia.libp2p.peerId] })
    const sources = new Set<string>()
    for await (const b of session.getMany(blocks.map(b => b.cid), { signal: AbortSignal.timeout(30_000) })) sources.add(b.source)
    assert.deepEqual([...sources], [helia.libp2p.peerId.toString()])
    for (const b of blocks) assert.deepEqual(await readAll(ours.blockstore, b.cid), b.bytes)
    // and a want-have answered by Helia
    const extra = randomBlocks(1, 4096)[0]
    await helia.blockstore.put(extra.cid, extra.bytes)
    assert.equal(await session.has(extra.cid), true)
    assert.equal(await session.has(randomBlocks(1, 10)[0].cid), false)
    await session.close()
  })
})
