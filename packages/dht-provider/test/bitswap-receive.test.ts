/**
 * The receive path (issue #14): verified blocks go to the sessions at once while their writes to
 * the store run in the background; `Bitswap.stored()` and `fetchDag` wait for those writes, and a
 * write that fails fails them with the store's error. A corrupt block is still refused before
 * anything sees it, and a server packs many blocks into one message. Real libp2p nodes on
 * 127.0.0.1; the stores are real (MemoryBlockstore, FsBlockstore) with a gate or a fault on `put`.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { FsBlockstore, StoreErrorCode, SwarmpackError, isSwarmpackError, pack, walkDag } from '@swarmpack/core'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { WantType } from '../src/bitswap/index.js'
import { createSwarmNode, createSwarmpackPeer, type SharingBlockstore, type SwarmNode, type SwarmpackPeer } from '../src/index.js'
import { RawBitswapClient, connect, createPeer, putAll, randomBlocks, stopPeers, waitUntil } from './bitswap-helpers.js'
import type { TestPeer } from './bitswap-helpers.js'
import type { CID, ProviderProgressEvents } from '@swarmpack/core'

/** A memory store whose writes wait until the test opens the gate (a slow disk). */
class GatedBlockstore extends MemoryBlockstore {
  writes = 0
  private opened!: () => void
  private readonly gate = new Promise<void>(resolve => { this.opened = resolve })

  open (): void { this.opened() }

  override async put (...args: Parameters<MemoryBlockstore['put']>): Promise<CID> {
    this.writes++
    await this.gate
    return super.put(...args)
  }
}

/** A memory store whose writes fail (a full disk). */
class FailingBlockstore extends MemoryBlockstore {
  override async put (): Promise<CID> {
    throw new SwarmpackError(StoreErrorCode.STORE_IO, 'no space left on device (test)')
  }
}

/** A memory store that serves every block with one byte flipped (rotten storage, or a liar). */
class CorruptBlockstore extends MemoryBlockstore {
  override async * get (cid: CID): AsyncGenerator<Uint8Array> {
    for await (const chunk of super.get(cid)) {
      const copy = chunk.slice()
      copy[copy.length >> 1] ^= 0xff
      yield copy
    }
  }
}

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false
  p.then(() => { done = true }, () => { done = true })
  // a few turns of the event loop: anything already resolvable has resolved by then
  for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve))
  return done
}

describe('bitswap: receive path', () => {
  const peers: TestPeer[] = []
  const cleanups: Array<() => Promise<void>> = []
  after(async () => {
    await stopPeers(...peers)
    for (const c of cleanups) await c()
  })

  it('sends many blocks per message', async () => {
    const server = await createPeer()
    peers.push(server)
    const blocks = randomBlocks(48, 16 * 1024)
    await putAll(server.blockstore, blocks)
    const client = await RawBitswapClient.create()
    cleanups.push(async () => { await client.libp2p.stop() })
    await connect(client.libp2p, server)
    await client.send(server.libp2p, { wants: blocks.map(b => ({ block: b.cid.bytes, priority: 1, wantType: WantType.WantBlock })) })
    const received = await client.waitFor(r => r.reduce((n, m) => n + m.payload.length, 0) >= blocks.length ? r : undefined)
    const withBlocks = received.filter(m => m.payload.length > 0)
    // 768 KiB asked in one wantlist fit one 2 MiB message; one message per block would be 48
    assert.ok(withBlocks.length <= 2, `48 blocks came in ${withBlocks.length} messages`)
    const got = new Set(withBlocks.flatMap(m => m.payload.map(p => Buffer.from(p.data).toString('base64'))))
    for (const b of blocks) assert.ok(got.has(Buffer.from(b.bytes).toString('base64')), 'every block asked for arrived')
  })

  it('hands verified blocks over before their writes finish; stored() waits for the writes', async () => {
    const provider = await createPeer()
    const store = new GatedBlockstore()
    const fetcher = await createPeer({ blockstore: store })
    peers.push(provider, fetcher)
    const blocks = randomBlocks(21, 32 * 1024)
    await putAll(provider.blockstore, blocks)
    await connect(fetcher, provider)
    const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId] })
    let n = 0
    for await (const b of session.getMany(blocks.slice(0, 20).map(b => b.cid))) {
      assert.equal(b.source, provider.libp2p.peerId.toString())
      n++
    }
    assert.equal(n, 20)
    assert.equal(store.writes, 20, 'every write began')
    for (const b of blocks.slice(0, 20)) assert.equal(await store.has(b.cid), false, 'no write finished: the gate is shut')
    const stored = fetcher.bitswap.stored()
    assert.equal(await settled(stored), false, 'stored() waits for the writes')

    // a block asked again while its write runs is answered from memory, not fetched twice
    const other = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId] })
    let source: string | undefined
    const again = await other.get(blocks[0].cid, { onProgress: (evt: ProviderProgressEvents) => { if (evt.type === 'swarmpack:provider:block') source = evt.detail.source } })
    assert.deepEqual(again, blocks[0].bytes)
    assert.equal(source, 'local')

    store.open()
    await stored
    for (const b of blocks.slice(0, 20)) assert.equal(await store.has(b.cid), true)
    // one more block through the same streams: anything sent before it has arrived by then
    assert.deepEqual(await other.get(blocks[20].cid), blocks[20].bytes)
    await waitUntil(() => provider.bitswap.stats().blocksSent >= 21, 'the provider counted its sends')
    assert.equal(provider.bitswap.stats().blocksSent, 21, 'no block was sent twice')
    assert.equal(fetcher.bitswap.stats().duplicateBlocks, 0)
    await session.close()
    await other.close()
  })

  it('stored() fails with the store\'s error when a received block could not be written', async () => {
    const provider = await createPeer()
    const fetcher = await createPeer({ blockstore: new FailingBlockstore() })
    peers.push(provider, fetcher)
    const blocks = randomBlocks(3, 8 * 1024)
    await putAll(provider.blockstore, blocks)
    await connect(fetcher, provider)
    const before = fetcher.bitswap.storeFailureCount()
    const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId] })
    // the bytes were verified, so the caller gets them; the failed write is reported by stored()
    assert.deepEqual(await session.get(blocks[0].cid), blocks[0].bytes)
    await assert.rejects(fetcher.bitswap.stored(before), (err: unknown) => {
      assert.ok(isSwarmpackError(err, StoreErrorCode.STORE_IO), String(err))
      assert.match((err as Error).message, /1 received blocks could not be stored: no space left/)
      return true
    })
    // failures before a reading do not count against later callers
    await fetcher.bitswap.stored(fetcher.bitswap.storeFailureCount())
    await session.close()
  })

  it('refuses a corrupt block: the sender is banned and nothing is stored', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swarmpack-bitswap-receive-'))
    const store = await FsBlockstore.open(dir)
    cleanups.push(async () => { await store.close(); await rm(dir, { recursive: true, force: true }) })
    const liarStore = new CorruptBlockstore()
    const liar = await createPeer({ blockstore: liarStore })
    const fetcher = await createPeer({ blockstore: store as never })
    peers.push(liar, fetcher)
    const blocks = randomBlocks(4, 16 * 1024)
    await putAll(liarStore, blocks)
    await connect(fetcher, liar)
    const session = fetcher.bitswap.createSession({ peers: [liar.libp2p.peerId] })
    const controller = new AbortController()
    const gets = Promise.allSettled(blocks.map(async b => session.get(b.cid, { signal: controller.signal })))
    await waitUntil(() => fetcher.bitswap.isBanned(liar.libp2p.peerId), 'the liar was banned')
    controller.abort()
    for (const r of await gets) assert.equal(r.status, 'rejected', 'no corrupt block was handed out')
    await fetcher.bitswap.stored()
    assert.equal(store.stats().blocks, 0, 'nothing was stored')
    assert.equal(fetcher.bitswap.stats().blocksReceived, 0)
    await session.close()
  })
})

describe('fetchDag: store writes', { timeout: 300_000 }, () => {
  const swarmPeers: SwarmpackPeer[] = []
  const nodes: SwarmNode[] = []
  const cleanups: Array<() => Promise<void>> = []
  after(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await Promise.all(swarmPeers.map(async p => p.stop().catch(() => {})))
    for (const c of cleanups) await c()
  })

  it('resolves only once every received block is in the store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swarmpack-fetchdag-writes-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    await mkdir(join(dir, 'content'))
    await writeFile(join(dir, 'content', 'lib.bin'), randomBytes(1_500_000))
    const providerStore = await FsBlockstore.open(join(dir, 'provider'), { fsync: false })
    const fetcherStore = await FsBlockstore.open(join(dir, 'fetcher'))
    cleanups.push(async () => { await providerStore.close(); await fetcherStore.close() })
    const { root } = await pack(join(dir, 'content'), { name: 'writes', version: '1.0.0' }, { blockstore: providerStore })
    let total = 0
    for await (const _ of walkDag([root], async cid => providerStore.getBytes(cid))) total++

    // the fetcher's writes wait for the gate, as a slow disk's would
    let openGate!: () => void
    const gate = new Promise<void>(resolve => { openGate = resolve })
    const gated = {
      has: async (cid: CID) => fetcherStore.has(cid),
      put: async (cid: CID, bytes: Uint8Array) => { await gate; return fetcherStore.put(cid, bytes) },
      get: async function * (cid: CID) { yield await fetcherStore.getBytes(cid) }
    } as unknown as SharingBlockstore

    const providerPeer = await createSwarmpackPeer({ network: 'loopback', bootstrap: [] })
    swarmPeers.push(providerPeer)
    nodes.push(await createSwarmNode({ peer: providerPeer, blockstore: providerStore }))
    const fetcherPeer = await createSwarmpackPeer({ network: 'loopback', bootstrap: [] })
    swarmPeers.push(fetcherPeer)
    const fetcher = await createSwarmNode({ peer: fetcherPeer, blockstore: gated, mode: 'consume' })
    nodes.push(fetcher)
    await fetcherPeer.libp2p.dial(providerPeer.multiaddrs()[0])

    const fetching = fetcher.fetch(root, { peers: [providerPeer.peerId] })
    // every block arrives and is verified while no write can finish
    await waitUntil(() => fetcher.bitswap.stats().blocksReceived >= total, 'every block received', 60_000)
    assert.equal(await settled(fetching), false, 'fetch waits for the writes')
    assert.equal(fetcherStore.stats().blocks, 0)
    openGate()
    const result = await fetching
    assert.equal(result.blocks, total)
    assert.equal(fetcherStore.stats().blocks, total, 'every block is in the store when fetch resolves')
  })
})
