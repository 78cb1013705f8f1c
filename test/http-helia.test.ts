/**
 * Interoperability: Helia's trustless-gateway client fetches blocks from our gateway server on
 * 127.0.0.1 (no libp2p networking; the gateway is its only provider, through a fallback router).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { fallbackRouter } from '@helia/fallback-router'
import { trustlessGatewayBlockBroker } from '@helia/trustless-gateway-client'
import { encodeCborBlock, rawCid, type Block } from '@swarmpack/core'
import { startGatewayServer, type GatewayServer } from '@swarmpack/http-provider'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { createHeliaLight, type Helia } from 'helia'
import { randomBytes } from 'node:crypto'

/**
 * Helia 7.1's routing hangs when every router is a fallback router (it waits on an empty set of
 * default routers that never reports idle), so the gateway list is offered as a default router.
 */
function asDefaultRouter (router: ReturnType<typeof fallbackRouter>): ReturnType<typeof fallbackRouter> {
  return { name: 'test-gateways', findProviders: router.findProviders?.bind(router) } as unknown as ReturnType<typeof fallbackRouter>
}

async function readAll (chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const c of chunks) parts.push(c)
  return new Uint8Array(Buffer.concat(parts))
}

describe('Helia trustless-gateway client against our gateway server', () => {
  let gw: GatewayServer
  let helia: Helia
  const blocks: Block[] = []
  const seen: string[] = []

  before(async () => {
    for (let i = 0; i < 6; i++) {
      const bytes = new Uint8Array(randomBytes(256 * 1024 + i))
      blocks.push({ cid: rawCid(bytes), bytes })
    }
    blocks.push(encodeCborBlock({ name: 'interop', chunks: blocks.map(b => b.cid) }))
    const served = new MemoryBlockstore()
    for (const b of blocks) await served.put(b.cid, b.bytes)
    gw = await startGatewayServer({ blockstore: served, host: '127.0.0.1', port: 0 })
    gw.server.on('request', req => { seen.push(`${String(req.headers.accept)} ${req.url ?? ''}`) })
    helia = createHeliaLight({
      blockstore: new MemoryBlockstore(),
      blockBrokers: [trustlessGatewayBlockBroker({ allowInsecure: true, allowLocal: true })],
      routers: [asDefaultRouter(fallbackRouter({ gateways: [gw.url], shuffle: false }))]
    })
    await helia.start()
  })
  after(async () => {
    await helia?.stop()
    await gw?.close()
  })

  it('fetches raw and dag-cbor blocks through Helia, verified by Helia', async () => {
    for (const b of blocks) {
      const bytes = await readAll(helia.blockstore.get(b.cid, { signal: AbortSignal.timeout(10_000) }))
      assert.ok(Buffer.from(bytes).equals(Buffer.from(b.bytes)), `block ${b.cid.toString()}`)
      assert.ok(seen.some(s => s.includes(`/ipfs/${b.cid.toString()}`)), 'fetched from our server')
    }
    assert.ok(seen.every(s => s.startsWith('application/vnd.ipld.raw')), 'Helia asks for raw blocks')
  })

  it('does not get a block our server lacks', async () => {
    const missing = rawCid(new Uint8Array([1, 2, 3, 4]))
    await assert.rejects(readAll(helia.blockstore.get(missing, { signal: AbortSignal.timeout(3000) })))
  })
})
