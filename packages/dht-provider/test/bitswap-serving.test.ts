/**
 * The serving side seen on the wire (through a hand-driven Bitswap client) and through real
 * sessions: want-have/Have/DontHave, waiting wants answered by notifyNewBlocks, cancels,
 * consume mode, and fair turns between peers.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { BlockPresenceType, WantType } from '../src/bitswap/pb/message.js'
import { cidPrefix } from '../src/bitswap/wire.js'
import { RawBitswapClient, connect, createPeer, putAll, randomBlocks, stopPeers, waitUntil } from './bitswap-helpers.js'
import type { TestPeer } from './bitswap-helpers.js'
import type { CID } from 'multiformats/cid'

/** A blockstore whose reads of chosen blocks hang until released: a slow disk. */
class SlowBlockstore extends MemoryBlockstore {
  private open!: () => void
  private readonly gate = new Promise<void>(resolve => { this.open = resolve })
  constructor (private readonly slow: Set<string>) { super() }
  release (): void { this.open() }
  override async * get (cid: CID): AsyncGenerator<Uint8Array> {
    if (this.slow.has(cid.toString())) await this.gate
    yield * super.get(cid)
  }
}

/** A blockstore whose every read takes `ms`: a slow disk. */
class DelayedBlockstore extends MemoryBlockstore {
  constructor (private readonly ms: number) { super() }
  override async * get (cid: CID): AsyncGenerator<Uint8Array> {
    await new Promise(resolve => setTimeout(resolve, this.ms))
    yield * super.get(cid)
  }
}

const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b))

describe('bitswap: serving', () => {
  const peers: TestPeer[] = []
  const clients: RawBitswapClient[] = []
  after(async () => {
    await stopPeers(...peers)
    for (const c of clients) await c.stop()
  })

  it('answers want-have with Have (or the block when tiny), DontHave only when asked, and want-block with the block', async () => {
    const server = await createPeer()
    peers.push(server)
    const client = await RawBitswapClient.create()
    clients.push(client)
    const [big, tiny, missing, missingQuiet] = [...randomBlocks(1, 64 * 1024), ...randomBlocks(1, 200), ...randomBlocks(2, 100)]
    await putAll(server.blockstore, [big, tiny])
    await connect(client.libp2p, server.libp2p)
    await client.send(server.libp2p, {
      wants: [
        { block: big.cid.bytes, priority: 1, wantType: WantType.WantHave, sendDontHave: true },
        { block: tiny.cid.bytes, priority: 1, wantType: WantType.WantHave, sendDontHave: true },
        { block: missing.cid.bytes, priority: 1, wantType: WantType.WantBlock, sendDontHave: true },
        { block: missingQuiet.cid.bytes, priority: 1, wantType: WantType.WantBlock }
      ]
    })
    const presences = (): Map<string, BlockPresenceType> => new Map(client.received.flatMap(m => m.blockPresences.map(p => [Buffer.from(p.cid).toString('hex'), p.type] as const)))
    await client.waitFor(() => presences().size >= 2 && client.received.some(m => m.payload.length > 0))
    const hex = (cid: CID): string => Buffer.from(cid.bytes).toString('hex')
    assert.equal(presences().get(hex(big.cid)), BlockPresenceType.Have)
    assert.equal(presences().get(hex(missing.cid)), BlockPresenceType.DontHave)
    assert.equal(presences().has(hex(missingQuiet.cid)), false, 'no DontHave unless asked for')
    const payload = client.received.flatMap(m => m.payload)
    assert.equal(payload.length, 1)
    assert.ok(eq(payload[0].data, tiny.bytes) && eq(payload[0].prefix, cidPrefix(tiny.cid)), 'tiny block sent instead of Have')

    // the block-wants for missing blocks wait; notifyNewBlocks answers them
    await putAll(server.blockstore, [missing, missingQuiet])
    server.bitswap.notifyNewBlocks([missing.cid, { cid: missingQuiet.cid }])
    await client.waitFor(r => r.flatMap(m => m.payload).length >= 3)
    const datas = client.received.flatMap(m => m.payload).map(b => Buffer.from(b.data))
    assert.ok(datas.some(d => eq(d, missing.bytes)) && datas.some(d => eq(d, missingQuiet.bytes)))

    // want-block for the big one now
    await client.send(server.libp2p, { wants: [{ block: big.cid.bytes, priority: 1, wantType: WantType.WantBlock }] })
    await client.waitFor(r => r.flatMap(m => m.payload).some(b => eq(b.data, big.bytes)))
    const ledger = server.bitswap.stats().peers.find(p => p.peer === client.libp2p.peerId.toString())
    assert.ok(ledger !== undefined)
    assert.equal(ledger.blocksSent, 4)
    assert.equal(ledger.wantlistSize, 0)
  })

  it('a cancel withdraws a want before a slow read finishes; an aborted get cancels', async () => {
    const [slowBlock] = randomBlocks(1, 32 * 1024)
    const store = new SlowBlockstore(new Set([slowBlock.cid.toString()]))
    const server = await createPeer({ blockstore: store })
    const fetcher = await createPeer()
    peers.push(server, fetcher)
    await putAll(store, [slowBlock])
    await connect(fetcher, server)
    const session = fetcher.bitswap.createSession({ peers: [server.libp2p.peerId], wantTimeout: 60_000 })
    const controller = new AbortController()
    const pending = session.get(slowBlock.cid, { signal: controller.signal })
    const me = fetcher.libp2p.peerId.toString()
    const wantlistSize = (): number => server.bitswap.stats().peers.find(p => p.peer === me)?.wantlistSize ?? 0
    await waitUntil(() => wantlistSize() === 1, 'the want reached the server')
    controller.abort()
    await assert.rejects(pending, { code: 'ERR_ABORTED' })
    await waitUntil(() => wantlistSize() === 0, 'the cancel reached the server')
    store.release()
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(server.bitswap.stats().blocksSent, 0, 'a cancelled want is not answered')
    await session.close()
  })

  it('a fetch nobody can serve fails with ERR_NOT_FOUND and leaves no wants behind', async () => {
    const a = await createPeer()
    const b = await createPeer()
    const fetcher = await createPeer()
    peers.push(a, b, fetcher)
    await connect(fetcher, a)
    await connect(fetcher, b)
    const session = fetcher.bitswap.createSession({ peers: [a.libp2p.peerId, b.libp2p.peerId] })
    const [absent] = randomBlocks(1, 10)
    await assert.rejects(session.get(absent.cid), { code: 'ERR_NOT_FOUND' })
    const me = fetcher.libp2p.peerId.toString()
    for (const p of [a, b]) {
      await waitUntil(() => (p.bitswap.stats().peers.find(x => x.peer === me)?.wantlistSize ?? 0) === 0, 'the wants were cancelled')
      assert.equal(p.bitswap.stats().peers.find(x => x.peer === me)?.wantlistSize, 0)
    }
    await session.close()
  })

  it('consume mode never sends blocks', async () => {
    const consumer = await createPeer({ serve: false })
    const fetcher = await createPeer()
    peers.push(consumer, fetcher)
    const blocks = randomBlocks(3, 1000)
    await putAll(consumer.blockstore, blocks)
    await connect(fetcher, consumer)
    const session = fetcher.bitswap.createSession({ peers: [consumer.libp2p.peerId] })
    await assert.rejects(session.get(blocks[0].cid), { code: 'ERR_NOT_FOUND' })
    assert.equal(await session.has(blocks[1].cid), false)
    assert.equal(consumer.bitswap.stats().blocksSent, 0)
    await session.close()
  })

  it('takes turns between peers: a second fetcher is served before the first finishes', async () => {
    // a slow disk and one turn at a time, so the server (not the network) decides the order
    const store = new DelayedBlockstore(10)
    const server = await createPeer({ blockstore: store, maxConcurrentSends: 1 })
    const first = await createPeer()
    const second = await createPeer()
    peers.push(server, first, second)
    const blocksA = randomBlocks(60, 256 * 1024)
    const blocksB = randomBlocks(60, 256 * 1024)
    await putAll(store, [...blocksA, ...blocksB])
    await connect(first, server)
    await connect(second, server)
    const order: string[] = []
    const run = async (peer: TestPeer, blocks: typeof blocksA, name: string): Promise<void> => {
      const session = peer.bitswap.createSession({ peers: [server.libp2p.peerId], maxWantsPerPeer: 64 })
      for await (const _ of session.getMany(blocks.map(b => b.cid))) order.push(name)
      await session.close()
    }
    await Promise.all([run(first, blocksA, 'a'), run(second, blocksB, 'b')])
    assert.equal(order.length, 120)
    // round robin: once both are being served, they take turns until the first one is done
    const start = Math.max(order.indexOf('a'), order.indexOf('b'))
    const end = Math.min(order.lastIndexOf('a'), order.lastIndexOf('b'))
    assert.ok(start < end, 'the fetches overlap')
    const window = order.slice(start, end + 1)
    const bShare = window.filter(x => x === 'b').length / window.length
    assert.ok(window.length >= 20 && bShare >= 0.25 && bShare <= 0.75, `turns are shared (b got ${(bShare * 100).toFixed(0)}% of ${window.length}: ${order.join('')})`)
  })
})
