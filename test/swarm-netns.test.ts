/**
 * Swarms in network namespaces (test/netns): peers as separate processes, each in its own
 * namespace on a bridge, uplinks capped with tbf. A small capped swarm delivers to everyone with 0
 * corrupt bytes; with 30 % of the serving peers SIGKILLed mid-transfer and a new peer joining,
 * every survivor still completes; LAN peers find each other by mDNS with no bootstrap list; a peer
 * behind a NAT (nftables masquerade) is reached through a circuit relay v2 reservation and serves
 * its package through it (DCUtR does not act on these private IPv4 addresses: test/nat-netns.test.ts
 * shows AutoNAT and the DCUtR upgrade over IPv6). Skips (saying why) where namespaces
 * can't be made: not root, no `ip`. Times are reported, not asserted (bench/swarm-distribution
 * measures them).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { writePackageDir } from './helpers/swarm.js'
import { NETNS_PREFIX, NetnsNetwork, cleanupStale, netnsUnavailable, nftPath } from './netns/netns.js'
import { lowerBounds, runDistribution, startNsPeer, type NsChild } from './netns/swarm.js'

const why = netnsUnavailable()
if (why !== undefined) console.log(`# swarm-netns: skipped: ${why}`)
const namespaces = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map(l => l.split(' ')[0]).filter(n => n.startsWith(NETNS_PREFIX))

describe('swarm in network namespaces', { skip: why, timeout: 600_000 }, () => {
  it('removes namespaces a killed run left at start, and everything it made at the end', () => {
    // a namespace named for a process that is gone (pid 2^22 + 1 is above Linux's pid_max limit)
    const stale = `${NETNS_PREFIX}${(2 ** 22 + 1).toString(36)}xdead`
    execFileSync('ip', ['netns', 'add', stale])
    const net = NetnsNetwork.create()
    assert.ok(!namespaces().includes(stale), 'stale namespace removed')
    const p = net.addPeer({ uplinkMbit: 10 })
    assert.match(net.exec(p.ns, 'ip', '-4', 'addr', 'show', 'eth0'), new RegExp(p.address.replaceAll('.', '\\.')))
    assert.match(net.exec(p.ns, 'tc', 'qdisc', 'show', 'dev', 'eth0'), /tbf .*rate 10Mbit/)
    net.remove()
    assert.deepEqual(namespaces().filter(n => n.includes(net.tag)), [])
  })

  it('a capped swarm (1 seed, 4 downloaders, 4 MiB, 20 Mbit/s uplinks) delivers to all, 0 corrupt bytes', async () => {
    const r = await runDistribution({ downloaders: 4, uplinkMbit: 20, packageBytes: 4 << 20, discovery: 'swarm', timeoutMs: 240_000 })
    const lb = lowerBounds(r.packageBytes, 20, 4)
    console.log(`# all 4 in ${(r.allMs / 1000).toFixed(1)} s (S/u ${lb.swarmSec.toFixed(1)} s, N·S/u ${lb.clientServerSec.toFixed(1)} s); seed sent ${(r.seedSent / r.packageBytes).toFixed(2)}x; load ${r.load[0].toFixed(1)}`)
    for (const p of r.peers) {
      assert.ok(p.ms !== undefined, `${p.name} completed (${p.error ?? ''})`)
      assert.equal(p.corruptBytes, 0, `${p.name} corrupt bytes`)
      assert.ok(p.verifiedBytes! >= r.packageBytes, `${p.name} holds the whole package`)
    }
    // only this process's: other runs on a shared machine (benchmarks) may hold namespaces meanwhile
    assert.deepEqual(namespaces().filter(n => n.startsWith(`${NETNS_PREFIX}${process.pid.toString(36)}x`)), [], 'no namespace left behind')
  })

  it('churn: 30 % of the serving downloaders SIGKILLed mid-transfer and a peer joining; every survivor completes', async () => {
    const r = await runDistribution({ downloaders: 6, uplinkMbit: 20, packageBytes: 4 << 20, discovery: 'swarm', timeoutMs: 300_000, churn: { killFraction: 0.3, joiners: 1 } })
    const killed = r.peers.filter(p => p.killed === true)
    const survivors = r.peers.filter(p => p.killed !== true)
    assert.equal(killed.length, 2)
    assert.equal(survivors.filter(p => p.joined === true).length, 1)
    for (const p of survivors) {
      assert.ok(p.ms !== undefined, `${p.name} completed (${p.error ?? ''})`)
      assert.equal(p.corruptBytes, 0, `${p.name} corrupt bytes`)
    }
    console.log(`# churn: ${survivors.length} survivors done in ${(r.allMs / 1000).toFixed(1)} s; load ${r.load[0].toFixed(1)}`)
  })

  it('discovery through the DHT alone: downloaders of one package find and serve each other before any of them is complete', async () => {
    // the seed's 10 Mbit/s uplink needs ~6.7 s per copy of 8 MiB: every downloader announces the
    // package once it holds the root block, and the lookups repeated during the fetch find them
    const r = await runDistribution({ downloaders: 3, uplinkMbit: 10, packageBytes: 8 << 20, discovery: 'dht', timeoutMs: 240_000 })
    const fromPeers = r.peers.map(p => (p.sources ?? []).filter(s => !r.seedIds.includes(s.peer)).reduce((sum, s) => sum + s.bytes, 0))
    console.log(`# dht discovery: all 3 in ${(r.allMs / 1000).toFixed(1)} s; seed sent ${(r.seedSent / r.packageBytes).toFixed(2)}x; bytes from other downloaders ${fromPeers.map(b => (b / 2 ** 20).toFixed(1)).join(', ')} MiB; load ${r.load[0].toFixed(1)}`)
    for (const p of r.peers) {
      assert.ok(p.ms !== undefined, `${p.name} completed (${p.error ?? ''})`)
      assert.equal(p.corruptBytes, 0, `${p.name} corrupt bytes`)
    }
    // without early announcements each downloader only knows the seed until one of them is done
    assert.ok(fromPeers.filter(b => b > 0).length >= 2, `at least two downloaders got blocks from other downloaders (${fromPeers.join(', ')} bytes)`)
    assert.ok(r.seedSent < 2.5 * r.packageBytes, `the seed sent ${(r.seedSent / r.packageBytes).toFixed(2)}x the package, not one copy per downloader`)
  })

  describe('network shapes', () => {
    let net: NetnsNetwork
    let tmp: string
    let content: string
    const peers: NsChild[] = []
    before(async () => {
      tmp = await mkdtemp(join(tmpdir(), 'spk-shapes-'))
      content = join(tmp, 'content')
      await writePackageDir(content, 1 << 20, 'shapes')
      net = NetnsNetwork.create()
    })
    after(async () => {
      await Promise.all(peers.map(async p => p.child.stop(5000).catch(() => {})))
      net.remove()
      await rm(tmp, { recursive: true, force: true })
      cleanupStale()
    })

    it('lan mode: peers on one bridge find each other by mDNS with no bootstrap list and fetch through the DHT', async () => {
      const start = async (name: string, args: string[] = []): Promise<NsChild> => {
        const p = await startNsPeer(net.addPeer(), name, join(tmp, name), ['--mdns', '--network', 'lan', ...args])
        peers.push(p)
        return p
      }
      const [seed, a, b] = await Promise.all([start('m-seed', ['--seed', content]), start('m-a'), start('m-b')])
      const root = (await seed.child.waitFor(e => e.event === 'seeded', 60_000, 'seeded')).root as string
      for (const p of [seed, a, b]) await p.child.waitFor(e => e.event === 'traffic' && (e.peers as number) >= 2 && (e.routingTable as number) >= 1, 120_000, 'two peers found by mDNS')
      // no peer is named to the fetch: the seed is found as a provider in the DHT the mDNS peers formed
      const announced = await seed.child.command(`announce ${root}`, 'announced', 60_000)
      assert.equal(announced.ok, true, 'a DHT peer stored the provider record')
      const fa = await a.child.command(`fetch ${root}`, 'fetched', 180_000)
      assert.ok((fa.sources as Array<{ peer: string }>).some(x => x.peer === seed.child.peerId), 'the seed served')
      assert.ok((fa.bytes as number) > 0)
    })

    it('a peer behind a NAT holds a relay reservation on a public peer and serves its package through it', { skip: nftPath() === undefined ? 'nft (nftables) is not installed: apt-get install nftables' : undefined }, async () => {
      const relay = await startNsPeer(net.addPeer(), 'relay', join(tmp, 'relay'), ['--relay-server', '--network', 'lan'])
      peers.push(relay)
      const natNs = net.addNattedPeer()
      const natted = await startNsPeer(natNs, 'natted', join(tmp, 'natted'), ['--relay-client', '--network', 'lan', '--bootstrap', relay.addr, '--seed', content])
      peers.push(natted)
      const root = (await natted.child.waitFor(e => e.event === 'seeded', 60_000, 'seeded')).root as string
      // the reservation shows as a /p2p-circuit address through the relay
      let circuit: string | undefined
      for (let i = 0; i < 120 && circuit === undefined; i++) {
        const e = await natted.child.command('peers', 'peers', 10_000)
        circuit = (e.addresses as string[]).find(a => a.includes('/p2p-circuit') && a.includes(relay.child.peerId))
        if (circuit === undefined) await new Promise(resolve => setTimeout(resolve, 500))
      }
      assert.ok(circuit !== undefined, 'the NATed peer announces a relayed address')
      // --relay-client gives it the circuit transport, to dial relayed addresses
      const outside = await startNsPeer(net.addPeer(), 'outside', join(tmp, 'outside'), ['--relay-client', '--network', 'lan', '--bootstrap', relay.addr])
      peers.push(outside)
      // the NAT is real: from the bridge, the peer's own address can't even be reached by TCP
      assert.throws(() => net.exec(outside.net.ns, 'timeout', '10', 'bash', '-c', `exec 3<>/dev/tcp/${natNs.address}/4001`))
      // the connection through the relay (a public peer seen from the NATed one, via masquerade)
      await outside.child.command(`dial ${circuit}`, 'dialed', 60_000)
      const f = await outside.child.command(`fetch ${root} ${natted.child.peerId}`, 'fetched', 180_000)
      assert.ok((f.sources as Array<{ peer: string }>).some(s => s.peer === natted.child.peerId), 'the NATed peer served')
      const conns = (await outside.child.command('peers', 'peers', 10_000)).connections as Array<{ peer: string, addr: string }>
      console.log(`# NATed peer served ${f.bytes as number} bytes over ${conns.filter(c => c.peer === natted.child.peerId).map(c => c.addr).join(', ')}`)
    })
  })
})
