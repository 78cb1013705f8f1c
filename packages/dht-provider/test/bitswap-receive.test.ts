/**
 * The receive path (issue #14): a verified block is handed over only once it is in the store (so
 * what a fetch reports survives a crash), a block whose write fails not at all, and `fetchDag`
 * resolves with every block stored. A corrupt block is refused before it is stored, and a server
 * packs many blocks into one message. Real libp2p nodes on 127.0.0.1; the stores are real
 * (MemoryBlockstore, FsBlockstore) with a gate or a fault on `put`.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { FsBlockstore, StoreErrorCode, SwarmpackError, pack, walkDag } from '@swarmpack/core'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { WantType } from '../src/bitswap/index.js'
import { createSwarmNode, createSwarmpackPeer, type SharingBlockstore, type SwarmNode, type SwarmpackPeer } from '../src/index.js'
import { RawBitswapClient, connect, createPeer, putAll, randomBlocks, stopPeers, waitUntil } from './bitswap-helpers.js'
import type { TestPeer } from './bitswap-helpers.js'
import type { CID } from '@swarmpack/core'

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

  it('hands a block over only once it is in the store, and a failed write not at all', async () => {
    const provider = await createPeer()
    const store = new GatedBlockstore()
    const fetcher = await createPeer({ blockstore: store })
    peers.push(provider, fetcher)
    const blocks = randomBlocks(4, 32 * 1024)
    await putAll(provider.blockstore, blocks)
    await connect(fetcher, provider)
    const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId] })
    const getting = session.get(blocks[0].cid)
    await waitUntil(() => store.writes >= 1, 'the write began')
    // verified and being written: what a fetch reports it has must survive a crash (R1)
    assert.equal(await settled(getting), false, 'not handed over while the write runs')
    store.open()
    assert.deepEqual(await getting, blocks[0].bytes)
    assert.equal(await store.has(blocks[0].cid), true)
    await session.close()

    const failing = await createPeer({ blockstore: new FailingBlockstore() })
    peers.push(failing)
    await connect(failing, provider)
    const other = failing.bitswap.createSession({ peers: [provider.libp2p.peerId] })
    const controller = new AbortController()
    const lost = other.get(blocks[1].cid, { signal: controller.signal })
    await waitUntil(() => failing.bitswap.stats().bytesReceived >= blocks[1].bytes.byteLength, 'the block arrived')
    assert.equal(await settled(lost), false, 'a block that could not be stored is not handed over')
    controller.abort()
    await assert.rejects(lost, { code: 'ERR_ABORTED' })
    await other.close()
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

  it('resolves only once every block is in the store', async () => {
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
    let writes = 0
    const gated = {
      has: async (cid: CID) => fetcherStore.has(cid),
      put: async (cid: CID, bytes: Uint8Array) => { writes++; await gate; return fetcherStore.put(cid, bytes) },
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
    await waitUntil(() => writes >= 1, 'the first write began', 60_000)
    assert.equal(await settled(fetching), false, 'fetch waits for the writes')
    assert.equal(fetcherStore.stats().blocks, 0)
    openGate()
    const result = await fetching
    assert.equal(result.blocks, total)
    assert.equal(fetcherStore.stats().blocks, total, 'every block is in the store when fetch resolves')
  })
})
