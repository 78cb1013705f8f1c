import '@swarmpack/core/polyfill'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsBlockstore, blockLinks, isSwarmpackError, pack, type CID } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer, findProviders, type SharingMode, type SwarmNode, type SwarmNodeInit, type SwarmpackPeer } from '../src/index.js'
import { waitUntil } from './bitswap-helpers.js'

describe('sharing modes (5 loopback peers, real stores)', () => {
  let dir: string
  let root: CID
  const peers: SwarmpackPeer[] = []
  const stores: FsBlockstore[] = []
  const nodes: Record<string, SwarmNode> = {}

  const add = async (name: string, mode: SharingMode, extra: Pick<SwarmNodeInit, 'mirrorRoots' | 'session' | 'announceWhenQuiet'> = {}): Promise<SwarmNode> => {
    const peer = await createSwarmpackPeer({ network: 'loopback', bootstrap: peers.length > 0 ? [peers[0].multiaddrs()[0].toString()] : [] })
    const store = await FsBlockstore.open(join(dir, name), { fsync: false })
    peers.push(peer)
    stores.push(store)
    nodes[name] = await createSwarmNode({ peer, blockstore: store, mode, ...extra })
    return nodes[name]
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-sharing-'))
    await mkdir(join(dir, 'content'))
    await writeFile(join(dir, 'content', 'lib.js'), randomBytes(400_000))
    // the seed's package is packed and pinned before its node starts: announced at start
    const seedStore = await FsBlockstore.open(join(dir, 'seed'), { fsync: false })
    const packed = await pack(join(dir, 'content'), { name: 'shared', version: '1.0.0' }, { blockstore: seedStore })
    root = packed.root
    await seedStore.pin('shared@1.0.0', root)
    await seedStore.close()
    await add('seed', 'share')
    await add('sharer', 'share')
    await add('consumer', 'consume')
    await add('other', 'share')
    await Promise.all(peers.map(async p => p.waitForRoutingTable(3, { timeout: 30_000, refreshEvery: 2000 })))
    await waitUntil(() => nodes.seed.announcer.has(root), 'the seed announces its pinned root')
    // the announcement is stored in the background: wait until the others' DHT lists the seed, so
    // the fetches below do not depend on how fast that went
    const seedId = nodes.seed.peer.peerId
    for (const p of peers.filter(p => !p.peerId.equals(seedId))) {
      await waitUntil(async () => (await findProviders(p.dht, root, { timeout: 10_000, self: p.peerId }).catch(() => [])).some(x => x.id.equals(seedId)), 'the DHT lists the seed', 120_000)
    }
  })

  after(async () => {
    await Promise.all(Object.values(nodes).map(async n => n.stop()))
    await Promise.all(peers.map(async p => p.stop()))
    await Promise.all(stores.map(async s => s.close()))
    await rm(dir, { recursive: true, force: true })
  })

  it('share: a fetched package is announced (once, as soon as its root block is held) and served', async () => {
    // counts the provides the node starts (the announcer itself is the real one)
    const announcer = nodes.sharer.announcer
    const real = announcer.announce.bind(announcer)
    let provides = 0
    announcer.announce = async (cid) => { provides++; return real(cid) }
    const r = await nodes.sharer.fetch(root)
    assert.ok(r.blocks >= 2)
    assert.deepEqual(r.sources.map(s => s.peer), [nodes.seed.peer.peerId.toString()])
    assert.ok(nodes.sharer.announcer.has(root))
    // announced while fetching; not provided a second time on completion
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(provides, 1)
    announcer.announce = real
  })

  it('share, in a swarm whose members know each other: announced once complete and serving is quiet, not while fetching', async () => {
    // one peer is "enough" here, as sixteen are by default
    const node = await add('tracked', 'share', { session: { enoughPeers: 1 }, announceWhenQuiet: { quietMs: 1500, maxMs: 20_000 } })
    const store = stores[stores.length - 1]
    // a peer that will fetch from it right after it completes, connected beforehand
    const late = await add('late', 'consume', { session: { enoughPeers: 1 } })
    await late.peer.libp2p.dial(node.peer.peerId)
    const leaf = blockLinks(root, await stores[0].getBytes(root))[0]
    const announcer = node.announcer
    const real = announcer.announce.bind(announcer)
    const provides: Array<{ leafHeld: boolean, blocksSent: number, at: number }> = []
    announcer.announce = async (cid) => {
      provides.push({ leafHeld: await store.has(leaf), blocksSent: node.bitswap.stats().blocksSent, at: Date.now() })
      return real(cid)
    }
    await node.fetch(root, { peers: [nodes.seed.peer.peerId] })
    const completed = Date.now()
    assert.equal(provides.length, 0, 'not announced while fetching, nor the moment it completes')
    // the late peer fetches from it meanwhile: the announcement waits for that serving to end
    await late.fetch(root, { peers: [node.peer.peerId] })
    const served = node.bitswap.stats().blocksSent
    assert.ok(served > 0, 'the late peer was served by the tracked one')
    await waitUntil(() => node.announcer.has(root), 'announced once serving is quiet', 30_000)
    assert.equal(provides.length, 1, 'one provide')
    assert.equal(provides[0].leafHeld, true, 'made with the package held')
    assert.equal(provides[0].blocksSent, served, 'made after the serving, not during it')
    assert.ok(provides[0].at - completed >= 1500, 'not before a quiet interval passed')
    announcer.announce = real
  })

  it('consume: fetches but never announces nor serves', async () => {
    const r = await nodes.consumer.fetch(root)
    assert.ok(r.bytes > 400_000)
    assert.equal(nodes.consumer.announcer.roots().length, 0)
    // ask the consumer directly: it holds every block yet serves none
    const session = nodes.other.bitswap.createSession({ peers: [nodes.consumer.peer.peerId], wantTimeout: 1000 })
    try {
      assert.equal(await session.has(root), false)
    } finally {
      await session.close()
    }
  })

  it('mirror: fetches, pins and announces its roots', async () => {
    const mirror = await add('mirror', 'mirror', { mirrorRoots: [root] })
    await peers.at(-1)!.waitForRoutingTable(2, { timeout: 30_000 })
    await mirror.mirrored()
    assert.ok(stores.at(-1)!.pins().some(p => p.root.equals(root) && p.name === `mirror:${root.toString()}`))
    assert.ok(mirror.announcer.has(root))
  })

  it('withdraws what is unpinned or evicted', async () => {
    await stores[0].unpin('shared@1.0.0')
    await nodes.seed.syncPins()
    assert.equal(nodes.seed.announcer.has(root), false)
    // the sharer's store loses the root block (eviction): it stops announcing the package
    assert.ok(nodes.sharer.announcer.has(root))
    await stores[1].delete(root)
    assert.equal(nodes.sharer.announcer.has(root), false)
  })

  it('rejects an unknown mode and a missing package with typed errors', async () => {
    await assert.rejects(createSwarmNode({ peer: peers[0], blockstore: stores[0], mode: 'hoard' as never }), (e: unknown) => isSwarmpackError(e, 'ERR_DHT_INVALID_CONFIG'))
    const missing = (await pack(join(dir, 'content'), { name: 'nobody-has', version: '9.9.9' }, { blockstore: { put: () => {} } })).root
    await assert.rejects(nodes.other.fetch(missing, { retries: 0 }), (e: unknown) => isSwarmpackError(e, 'ERR_NOT_FOUND'))
    // the failed fetch is forgotten: its root block stored later (say by a mirror download) is
    // not taken for the start of that fetch and announced
    const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
    await pack(join(dir, 'content'), { name: 'nobody-has', version: '9.9.9' }, { blockstore: { put: (cid: CID, bytes: Uint8Array) => { blocks.push({ cid, bytes }) } } })
    const rootBlock = blocks.find(b => b.cid.equals(missing))!
    await stores[3].put(rootBlock.cid, rootBlock.bytes)
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(nodes.other.announcer.has(missing), false)
  })
})
