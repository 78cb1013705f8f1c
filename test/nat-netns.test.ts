/**
 * AutoNAT and DCUtR in network namespaces, over IPv6 addresses from the documentation prefix
 * 3fff::/20 (RFC 9637): libp2p counts them as public (they are on none of its private lists), so
 * both services act on them, and they are reserved for documentation, never routed on the
 * internet; they exist only inside the namespaces made here. A relay and an outside peer sit on a
 * bridge (3fff:77::/64); one peer sits behind a router whose stateful firewall drops every
 * connection opened from the bridge (what home routers do for IPv6), another behind a NAT66
 * router (a ULA masqueraded to the router's address).
 *
 * AutoNAT (v2): the outside peer's address is confirmed by a dial-back and announced; the
 * firewalled peer's dial-back fails and its address stays unverified and unannounced. DCUtR: the
 * outside peer dials each shielded peer through the relay; DCUtR replaces the relayed connection
 * with a direct one (the shielded peer dials out to the outside peer's verified address, which
 * its router lets through) and the package is served over it. Between the two shielded peers
 * DCUtR gives up, since neither has a verified address to offer, and the relay carries the
 * transfer. UPnP: behind a third firewall router running miniupnpd (skipped without it), a peer
 * opens an IPv6 pinhole with @libp2p/upnp-nat, AutoNAT verifies its address through it, and the
 * outside peer dials it directly. Skips (saying why) without namespaces or nft.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { writePackageDir, type NodeEvent } from './helpers/swarm.js'
import { NetnsNetwork, cleanupStale, miniupnpdPath, netnsUnavailable, nftPath, type NetPeer } from './netns/netns.js'
import { waitForPeers } from './netns/node.js'
import { startNsPeer, type NsChild } from './netns/swarm.js'

const why = netnsUnavailable() ?? (nftPath() === undefined ? 'nft (nftables) is not installed: apt-get install nftables' : undefined)
if (why !== undefined) console.log(`# nat-netns: skipped: ${why}`)

interface AddressStatus { multiaddr: string, verified: boolean, type: string }
interface Tally { addr: string, success: number, failure: number }
interface Conn { peer: string, addr: string, limited: boolean, direction: string }

const statusOf = (e: NodeEvent, addr: string): AddressStatus | undefined => (e.addressStatus as AddressStatus[]).find(a => a.multiaddr === addr)
const listen6 = (p: NsChild): string => `/ip6/${p.net.address6!}/tcp/4001`

describe('AutoNAT, DCUtR and UPnP over IPv6 (3fff::/20) in network namespaces', { skip: why, timeout: 180_000 }, () => {
  let net: NetnsNetwork
  let tmp: string
  let content: string
  let content2: string
  let relay: NsChild
  let outside: NsChild
  let shielded: NsChild
  let natted: NsChild
  const peers: NsChild[] = []

  // DCUtR's own log tells its upgrade from any other direct dial (kept in ChildPeer.stderr)
  const env = { DEBUG: [process.env.DEBUG, 'libp2p:dcutr*'].filter(d => d !== undefined && d !== '').join(',') }
  const start = async (name: string, at: NetPeer, args: string[]): Promise<NsChild> => {
    const p = await startNsPeer(at, name, join(tmp, name), ['--network', 'lan', '--autonat', ...args], 240_000, env)
    peers.push(p)
    return p
  }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'spk-nat-'))
    content = join(tmp, 'content')
    content2 = join(tmp, 'content2')
    await writePackageDir(content, 1 << 20, 'nat')
    // each shielded peer seeds its own package, so each fetch has to come from it
    await writePackageDir(content2, 1 << 20, 'nat66')
    net = NetnsNetwork.create()
    // IPv6 only: AutoNAT only dials back an address whose host is the one the asking peer is
    // connected from, and only sends IPv6 addresses to peers that announce one
    const relayNet = net.addPeer({ ipv6: 'only' })
    // a public server is told its address (announced, so verified from the start), as a bootstrap node would be
    relay = await start('relay', relayNet, ['--relay-server', '--announce', `/ip6/${relayNet.address6!}/tcp/4001`])
    const outsideNet = net.addPeer({ ipv6: 'only' })
    const shieldedNet = net.addShieldedPeerV6('firewall')
    const nattedNet = net.addShieldedPeerV6('nat66')
    ;[outside, shielded, natted] = await Promise.all([
      start('outside', outsideNet, ['--relay-client', '--bootstrap', relay.addr6!]),
      start('shielded', shieldedNet, ['--relay-client', '--bootstrap', relay.addr6!, '--seed', content]),
      start('natted', nattedNet, ['--relay-client', '--bootstrap', relay.addr6!, '--seed', content2])
    ])
  })
  after(async () => {
    await Promise.all(peers.map(async p => p.child.stop(5000).catch(() => {})))
    net?.remove()
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true })
    cleanupStale()
  })

  it('AutoNAT: a public peer\'s address is confirmed by a dial-back; a firewalled peer\'s dial-back fails and its address is not announced', async () => {
    // the firewall is real: from the bridge, the shielded peer's port can't be reached by TCP
    assert.throws(() => net.exec(outside.net.ns, 'timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/${shielded.net.address6!}/4001`))
    const pub = await waitForPeers(outside, e => statusOf(e, listen6(outside))?.verified === true, `a verified ${listen6(outside)}`)
    assert.ok((pub.addresses as string[]).some(a => a.startsWith(listen6(outside))), 'the confirmed address is announced')
    const sh = await waitForPeers(shielded, e => ((e.autonat ?? []) as Tally[]).some(t => t.addr === listen6(shielded) && t.failure >= 1), `a failed dial-back of ${listen6(shielded)}`)
    const tally = (sh.autonat as Tally[]).find(t => t.addr === listen6(shielded))!
    assert.equal(tally.success, 0)
    assert.equal(statusOf(sh, listen6(shielded))?.verified, false, 'the firewalled address stays unverified')
    assert.ok(!(sh.addresses as string[]).some(a => a.startsWith(listen6(shielded))), 'and is not announced')
    console.log(`# autonat: ${listen6(outside)} verified; ${listen6(shielded)} dial-backs ok ${tally.success}, failed ${tally.failure}, verified false`)
  })

  /**
   * The outside peer opens a connection to `target` through the relay; waits until DCUtR has
   * replaced it with a direct one, then fetches the target's package over it.
   */
  async function relayThenUpgrade (target: NsChild): Promise<{ relayed: string, direct: Conn[], bytes: number }> {
    const root = (await target.child.waitFor(e => e.event === 'seeded', 60_000, 'seeded')).root as string
    // DCUtR's direct dial goes to the addresses the outside peer announces: its verified one
    await waitForPeers(outside, e => statusOf(e, listen6(outside))?.verified === true, `a verified ${listen6(outside)}`)
    const isCircuit = (a: string): boolean => a.includes('/p2p-circuit') && a.includes(relay.child.peerId)
    const circuit = ((await waitForPeers(target, e => (e.addresses as string[]).some(isCircuit), 'a relayed address')).addresses as string[]).find(isCircuit)!
    // the target may have reached the outside peer by itself before (e.g. for the DHT; then it is
    // the one to start DCUtR): closed first, so the outside peer opens the relayed connection
    let relayed: string | undefined
    for (let i = 0; i < 5 && relayed === undefined; i++) {
      await outside.child.command(`hangup ${target.child.peerId}`, 'hungup', 30_000)
      const d = await outside.child.command(`dial ${circuit}`, 'dialed', 60_000)
      if ((d.remoteAddr as string).includes('/p2p-circuit')) relayed = d.remoteAddr as string
    }
    assert.ok(relayed !== undefined, `the outside peer holds a relayed connection to ${target.child.name}`)
    const toTarget = (e: NodeEvent): Conn[] => (e.connections as Conn[]).filter(c => c.peer === target.child.peerId)
    // DCUtR closes the relayed connection once the direct one is up
    const up = await waitForPeers(outside, e => toTarget(e).length > 0 && toTarget(e).every(c => !c.addr.includes('/p2p-circuit')), `only a direct connection to ${target.child.name}`)
    const direct = toTarget(up)
    assert.ok(direct.every(c => !c.limited))
    // the target (the relayed connection's receiver) ran DCUtR and dialled the outside peer's verified address
    const upgraded = `unilateral connection upgrade to ${outside.child.peerId} succeeded`
    assert.ok(target.child.stderr.some(l => l.includes(upgraded)), `${target.child.name} logged "${upgraded}"`)
    const f = await outside.child.command(`fetch ${root} ${target.child.peerId}`, 'fetched', 120_000)
    assert.ok((f.sources as Array<{ peer: string }>).some(s => s.peer === target.child.peerId), `${target.child.name} served`)
    const later = toTarget(await outside.child.command('peers', 'peers', 10_000))
    assert.ok(later.length > 0 && later.every(c => !c.addr.includes('/p2p-circuit')), `served over a direct connection (${later.map(c => c.addr).join(', ')})`)
    return { relayed, direct, bytes: f.bytes as number }
  }

  it('DCUtR: a connection through the relay to the firewalled peer is upgraded to a direct one, which serves the package', async () => {
    const r = await relayThenUpgrade(shielded)
    // the firewalled peer dialled out (DCUtR's unilateral upgrade): the outside peer sees its own address
    assert.ok(r.direct.some(c => c.addr.startsWith(`/ip6/${shielded.net.address6!}/tcp/`) && c.direction === 'inbound'), r.direct.map(c => c.addr).join(', '))
    console.log(`# dcutr (firewall): relayed ${r.relayed} replaced by ${r.direct.map(c => `${c.direction} ${c.addr}`).join(', ')}; ${r.bytes} bytes served over it`)
  })

  it('DCUtR behind NAT66: the relayed connection is upgraded to a direct one through the masquerade, which serves the package', async () => {
    // the NAT is real: the peer's ULA is not even routed from the bridge
    assert.throws(() => net.exec(outside.net.ns, 'timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/${natted.net.address6!}/4001`))
    const r = await relayThenUpgrade(natted)
    // masqueraded: the outside peer sees the router's address, not the peer's ULA
    assert.ok(r.direct.some(c => c.addr.startsWith(`/ip6/${natted.net.router6!}/tcp/`) && c.direction === 'inbound'), r.direct.map(c => c.addr).join(', '))
    console.log(`# dcutr (nat66): relayed ${r.relayed} replaced by ${r.direct.map(c => `${c.direction} ${c.addr}`).join(', ')}; ${r.bytes} bytes served over it`)
  })

  it('between two shielded peers DCUtR gives up (neither has a verified address to punch to); the relay carries the package', async () => {
    const root = (await shielded.child.waitFor(e => e.event === 'seeded', 60_000, 'seeded')).root as string
    const isCircuit = (a: string): boolean => a.includes('/p2p-circuit') && a.includes(relay.child.peerId)
    const circuit = ((await waitForPeers(shielded, e => (e.addresses as string[]).some(isCircuit), 'a relayed address')).addresses as string[]).find(isCircuit)!
    // the receiver (B) offers only its verified addresses: none but relayed ones, so the other side refuses
    const gaveUp = 'error while attempting DCUtR on attempt 3 of 3'
    // counted from here on (ChildPeer.stderr keeps only the last lines), on both sides: the side
    // the relayed connection is inbound to runs the upgrade, which is the natted peer if the
    // shielded one reconnected to it first (likely why one CI run saw no give-up from the shielded
    // peer; not reproduced)
    let gaveUpCount = 0
    const gaveUpBy = new Set<string>()
    const readers = [shielded, natted].map(p => {
      const lines = createInterface({ input: p.child.proc.stderr! })
      lines.on('line', (l) => { if (l.includes(gaveUp)) { gaveUpCount++; gaveUpBy.add(p.child.name) } })
      return lines
    })
    await natted.child.command(`hangup ${shielded.child.peerId}`, 'hungup', 30_000)
    const d = await natted.child.command(`dial ${circuit}`, 'dialed', 60_000)
    assert.ok((d.remoteAddr as string).includes('/p2p-circuit'), `relayed (${d.remoteAddr as string})`)
    const deadline = Date.now() + 60_000
    while (gaveUpCount === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 250))
    for (const lines of readers) lines.close()
    assert.ok(gaveUpCount > 0, `one side of the relayed connection logged "${gaveUp}"`)
    const f = await natted.child.command(`fetch ${root} ${shielded.child.peerId}`, 'fetched', 120_000)
    assert.ok((f.sources as Array<{ peer: string }>).some(s => s.peer === shielded.child.peerId), 'the shielded peer served')
    const conns = ((await natted.child.command('peers', 'peers', 10_000)).connections as Conn[]).filter(c => c.peer === shielded.child.peerId)
    assert.ok(conns.length > 0 && conns.every(c => c.addr.includes('/p2p-circuit')), `still relayed only (${conns.map(c => c.addr).join(', ')})`)
    console.log(`# dcutr (both shielded): ${[...gaveUpBy].join(', ')} gave up; no upgrade; ${f.bytes as number} bytes through ${conns.map(c => c.addr).join(', ')}`)
  })

  it('UPnP: a firewalled peer opens an IPv6 pinhole on its router (miniupnpd); AutoNAT then verifies its address and the outside peer dials it directly', { skip: miniupnpdPath() === undefined ? 'miniupnpd is not installed: apt-get install miniupnpd-nftables' : undefined }, async () => {
    const upNet = net.addShieldedPeerV6('firewall', { upnp: true })
    // an IPv6-only gateway can't report an external address over UPnP (GetExternalIPAddress is
    // IPv4), so the peer is told its router's. No bootstrap yet: AutoNAT asks each network segment
    // about an address once, so the first ask must come after the pinhole.
    const up = await start('upnp', upNet, ['--relay-client', '--upnp', upNet.router6!])
    const probe = (): boolean => { try { net.exec(outside.net.ns, 'timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/${upNet.address6!}/4001`); return true } catch { return false } }
    const rules = (): string => net.exec(upNet.routerNs!, nftPath()!, 'list', 'chain', 'inet', 'filter', 'forwardUPnP')
    const deadline = Date.now() + 60_000
    while (!rules().includes('dport 4001') && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 250))
    assert.match(rules(), /dport 4001/, 'miniupnpd holds a pinhole for port 4001')
    assert.ok(probe(), 'the pinhole lets a TCP connection from the bridge through')
    await up.child.command(`dial ${relay.addr6!}`, 'dialed', 60_000)
    const verified = await waitForPeers(up, e => statusOf(e, listen6(up))?.verified === true, `a verified ${listen6(up)}`)
    assert.ok((verified.addresses as string[]).some(a => a.startsWith(listen6(up))), 'the address is announced')
    const d = await outside.child.command(`dial ${up.addr6!}`, 'dialed', 60_000)
    assert.ok(!(d.remoteAddr as string).includes('/p2p-circuit'), `a direct connection (${d.remoteAddr as string})`)
    console.log(`# upnp: pinhole ${rules().split('\n').find(l => l.includes('dport 4001'))?.trim() ?? ''}; ${listen6(up)} verified (${(verified.addressStatus as AddressStatus[]).filter(a => a.multiaddr === listen6(up)).map(a => a.type).join(', ')}); outside dialled ${d.remoteAddr as string}`)
  })
})
