/**
 * The embeddable node (createSwarmpack, each in its own process and network namespace on one
 * bridge) on real network shapes, configured only through the deployment config (issue #15):
 * - `network.mode: 'lan'` with no bootstrap list: nodes find each other by mDNS; one installs from a
 *   mirror directory, two install it from the swarm alone (peers-only), one of them joining later
 *   and getting the index from the swarm in its start-up follow.
 * - A node behind a NAT (an nftables masquerade router) with `network.relay.client` holds a
 *   reservation on a public node with `network.relay.server`, and a node on the bridge installs the
 *   package it holds through the relay, having found it in the DHT.
 * Skips (saying why) where namespaces can't be made (not root, no `ip`), and the NAT case without
 * `nft`. Everything made is removed at the end, also after a failure.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { after, before, describe, it } from 'node:test'
import { TestPublisher, seededBytes } from '../packages/swarmpack/test/helpers/publisher.js'
import { stopAll, type ChildPeer, type NodeEvent } from './helpers/swarm.js'
import { NetnsNetwork, cleanupStale, netnsUnavailable, nftPath } from './netns/netns.js'
import { startNsNode, waitForPeers, type NsNode } from './netns/node.js'
import { PEER_PORT } from './netns/swarm.js'

const why = netnsUnavailable()
if (why !== undefined) console.log(`# node-netns: skipped: ${why}`)
const MiB = 1024 * 1024

interface Fetched { bytes: { network: number }, sources: Array<{ kind: string, origin?: string, source: string, bytes: number }> }

describe('the node in network namespaces', { skip: why, timeout: 600_000 }, () => {
  let dir: string
  let pub: TestPublisher
  let net: NetnsNetwork
  const children: ChildPeer[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-node-netns-'))
    pub = await TestPublisher.create(join(dir, 'publisher'))
    const files = (v: string, seed: number): Record<string, string | Uint8Array> => ({ 'index.js': `export const v = '${v}'\n`, 'data.bin': seededBytes(MiB, seed) })
    await pub.publish({ name: 'b', version: '1.0.0', files: files('b1', 11), entry: 'index.js' })
    await pub.publish({ name: 'a', version: '1.0.0', files: files('a1', 12), dependencies: { b: '^1' }, entry: 'index.js' })
    await pub.publishIndex()
    net = NetnsNetwork.create()
  })
  after(async () => {
    await stopAll(children)
    net?.remove()
    await pub?.close()
    await rm(dir, { recursive: true, force: true })
    cleanupStale()
  })

  /** Trusts the publisher, reads its heads from the mirror directory (the file system is shared), wants `a`. */
  const config = (network: Record<string, unknown>, sources: Record<string, unknown>): Record<string, unknown> => ({
    ...pub.trustConfig(),
    indexers: [{ ...pub.trustConfig().indexers[0], heads: { directories: [pub.mirrorDir] } }],
    modules: { a: '^1.0.0' },
    network: { listen: [`/ip4/0.0.0.0/tcp/${PEER_PORT}`], ...network },
    sources
  })
  const start = async (peer: ReturnType<NetnsNetwork['addPeer']>, name: string, network: Record<string, unknown>, sources: Record<string, unknown>): Promise<NsNode> => {
    const n = await startNsNode(peer, name, dir, config(network, sources))
    children.push(n.child)
    return n
  }
  const apply = async (n: NsNode): Promise<{ applied: NodeEvent, fetched: Fetched[] }> => {
    const from = n.child.events.length
    const applied = await n.child.command('apply', 'applied', 240_000)
    return { applied, fetched: n.child.events.slice(from).filter(e => e.event === 'fetched') as unknown as Fetched[] }
  }
  const followUntilAccepted = async (n: NsNode, timeout = 120_000): Promise<void> => {
    for (const deadline = Date.now() + timeout; ;) {
      const reports = (await n.child.command('follow', 'followed', 120_000)).reports as Array<{ version?: number, error?: unknown }>
      if (reports.length === 1 && reports[0].version === 1 && reports[0].error === undefined) return
      if (Date.now() > deadline) assert.fail(`${n.child.name}: no index accepted within ${timeout} ms: ${JSON.stringify(reports)}`)
      await delay(1000)
    }
  }
  const networkBytes = (f: Fetched[]): number => f.reduce((s, x) => s + x.bytes.network, 0)
  const origins = (f: Fetched[]): Set<string> => new Set(f.flatMap(x => x.sources.filter(s => s.bytes > 0).map(s => s.origin ?? s.source)))

  it('lan mode: nodes with no bootstrap list find each other by mDNS; others install from the swarm what one holds', async () => {
    const mirror = { directories: [{ path: pub.mirrorDir }], policy: 'mirrors-only' }
    const [seed, x] = await Promise.all([
      start(net.addPeer(), 'lan-seed', { mode: 'lan' }, mirror),
      start(net.addPeer(), 'lan-x', { mode: 'lan' }, { policy: 'peers-only' })
    ])
    const meshed = async (nodes: NsNode[]): Promise<void> => {
      for (const n of nodes) {
        const others = nodes.filter(o => o !== n).map(o => o.child.peerId)
        await waitForPeers(n, e => others.every(id => (e.peers as string[]).includes(id)) && (e.routingTable as number) >= 1, 'the other nodes found by mDNS')
      }
    }
    // nobody was told of anybody: each finds the other on the bridge and puts it in its DHT table
    await meshed([seed, x])
    const s = await apply(seed)
    assert.equal(s.applied.generation, 1)
    assert.ok(s.applied.announced > 0, 'the seed announced what it installed in the DHT the mDNS peers formed')
    assert.ok(s.fetched.every(f => f.sources.every(src => src.kind === 'mirror')))
    // x started before anyone held the index (its start-up follow found no block): follow again
    // (a lookup that just found nobody is repeated only after a few seconds)
    await followUntilAccepted(x)
    // a node joining now, as a one-shot command would: its start-up follow gets the index from the swarm
    const y = await start(net.addPeer(), 'lan-y', { mode: 'lan' }, { policy: 'peers-only' })
    const followed = y.child.events.find(e => e.event === 'ready')?.followed as Array<{ version?: number, error?: unknown }>
    assert.deepEqual(followed.map(r => [r.version, r.error]), [[1, undefined]], `the start-up follow: ${JSON.stringify(followed)}`)
    // peers-only: every byte, the index's included, can only come from the swarm
    const results = await Promise.all([x, y].map(apply))
    for (const r of results) {
      assert.equal(r.applied.generation, 1)
      assert.ok(networkBytes(r.fetched) > 2 * MiB, `fetched the packages over the network (${networkBytes(r.fetched)} bytes)`)
      assert.ok(r.fetched.every(f => f.sources.every(src => src.kind === 'peer')), JSON.stringify(r.fetched.map(f => f.sources)))
      assert.ok(origins(r.fetched).has(seed.child.peerId), `the seed served: ${[...origins(r.fetched)].join(', ')}`)
      assert.equal(await readFile(join(r.applied.packages.a.path as string, 'index.js'), 'utf8'), "export const v = 'a1'\n")
    }
    await meshed([seed, x, y])
    await stopAll([seed.child, x.child, y.child])
  })

  it('a node behind a NAT holds a relay reservation on a public node, and a node on the bridge installs from it through the relay', { skip: nftPath() === undefined ? 'nft (nftables) is not installed: apt-get install nftables' : undefined }, async () => {
    // mDNS off: the NATed node is reached through the relay alone, not found on the link
    const relay = await start(net.addPeer(), 'relay', { mode: 'lan', mdns: false, relay: { server: { unlimited: true } } }, {})
    const natNs = net.addNattedPeer()
    const natted = await start(natNs, 'natted', { mode: 'lan', mdns: false, relay: { client: true } }, { directories: [{ path: pub.mirrorDir }], policy: 'mirrors-only', bootstrap: [relay.addr] })
    const relayId = relay.child.peerId
    const reserved = await waitForPeers(natted, e => (e.addresses as string[]).some(a => a.includes(`/p2p/${relayId}/p2p-circuit`)), 'a relayed address through the relay')
    const circuit = (reserved.addresses as string[]).find(a => a.includes('/p2p-circuit')) as string
    const n = await apply(natted)
    assert.equal(n.applied.generation, 1)
    assert.ok(n.applied.announced > 0, 'the NATed node announced what it installed')

    const outside = await start(net.addPeer(), 'outside', { mode: 'lan', mdns: false, relay: { client: true } }, { bootstrap: [relay.addr], policy: 'peers-only' })
    // the NAT is real: from the bridge, the NATed address cannot even be reached by TCP
    assert.throws(() => net.exec(outside.net.ns, 'timeout', '10', 'bash', '-c', `exec 3<>/dev/tcp/${natNs.address}/4001`))
    const r = await apply(outside)
    assert.equal(r.applied.generation, 1)
    assert.ok(networkBytes(r.fetched) > 2 * MiB)
    assert.ok(r.fetched.every(f => f.sources.every(src => src.kind === 'peer')))
    assert.ok(origins(r.fetched).has(natted.child.peerId), `the NATed node served: ${[...origins(r.fetched)].join(', ')}`)
    const conns = (await outside.child.command('peers', 'peers')).connections as Array<{ peer: string, addr: string, limited: boolean }>
    const toNatted = conns.filter(c => c.peer === natted.child.peerId)
    assert.ok(toNatted.length > 0 && toNatted.every(c => c.addr.includes('/p2p-circuit')), `connected to the NATed node through the relay: ${JSON.stringify(toNatted)}`)
    console.log(`# the NATed node (reserved ${circuit}) served ${networkBytes(r.fetched)} bytes over ${toNatted.map(c => c.addr).join(', ')}`)
  })
})
