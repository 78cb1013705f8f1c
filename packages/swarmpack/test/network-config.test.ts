/**
 * The `network` section's discovery and NAT options (issue #15): defaults, the combinations that
 * are refused with a typed error naming the key, the mapping onto the dht-provider peer's options,
 * and two real nodes on 127.0.0.1 where one acts as a circuit relay and the other takes a
 * reservation on it. mDNS itself is exercised in namespaces (test/node-netns.test.ts): here no
 * node runs it, so nothing multicasts outside loopback.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { isSwarmpackError } from '@swarmpack/core'
import { SwarmpackNodeErrorCode, mdnsEnabled, parseConfig, peerNetworkOptions, starterConfigText, parseConfigText, type DeploymentConfigInput } from '../src/index.js'
import { World } from './helpers/world.js'
import { waitFor } from './helpers/ops.js'

const HOP = '/libp2p/circuit/relay/0.2.0/hop'

const network = (n: Record<string, unknown>): ReturnType<typeof parseConfig>['network'] => parseConfig({ network: n }).network

function issuePaths (n: Record<string, unknown>): string[] {
  try {
    parseConfig({ network: n })
  } catch (err) {
    assert.ok(isSwarmpackError(err, SwarmpackNodeErrorCode.CONFIG_INVALID), String(err))
    return (err.details.issues as Array<{ path: string }>).map(i => i.path).sort()
  }
  assert.fail(`accepted ${JSON.stringify(n)}`)
}

describe('network config: LAN discovery and NAT traversal', () => {
  it('defaults: nothing but TCP and the DHT; mDNS on in lan mode only', () => {
    const n = network({})
    assert.deepEqual({ relay: n.relay, autonat: n.autonat, upnp: n.upnp, dcutr: n.dcutr, mdns: n.mdns }, { relay: { client: false, server: false }, autonat: false, upnp: false, dcutr: undefined, mdns: undefined })
    assert.deepEqual(peerNetworkOptions(n), { network: 'internet', announce: [] })
    assert.equal(mdnsEnabled(network({ mode: 'lan' })), true)
    assert.equal(mdnsEnabled(network({ mode: 'loopback' })), false)
    assert.deepEqual(peerNetworkOptions(network({ mode: 'lan' })), { network: 'lan', announce: [], mdns: true })
  })

  it('mDNS can be turned off in lan mode, on elsewhere, and given a query interval', () => {
    assert.equal(peerNetworkOptions(network({ mode: 'lan', mdns: false })).mdns, undefined)
    assert.equal(peerNetworkOptions(network({ mode: 'internet', mdns: true })).mdns, true)
    assert.deepEqual(peerNetworkOptions(network({ mode: 'lan', mdns: { intervalMs: 5000 } })).mdns, { interval: 5000 })
  })

  it('maps relay, DCUtR, AutoNAT and UPnP onto the peer’s NAT options', () => {
    assert.deepEqual(peerNetworkOptions(network({ relay: { client: true } })).nat, { relayClient: true })
    assert.deepEqual(peerNetworkOptions(network({ relay: { server: true }, dcutr: false })).nat, { relayServer: true, holePunch: false })
    assert.deepEqual(peerNetworkOptions(network({ relay: { server: { maxReservations: 8, unlimited: true } } })).nat, { relayServer: { maxReservations: 8, unlimited: true } })
    assert.deepEqual(peerNetworkOptions(network({ relay: { client: true }, dcutr: true, autonat: true, upnp: true, listen: ['/ip4/0.0.0.0/tcp/4001'], maxConnections: 50 })), {
      network: 'internet',
      announce: [],
      listen: ['/ip4/0.0.0.0/tcp/4001'],
      maxConnections: 50,
      nat: { relayClient: true, holePunch: true, autonat: true, upnp: true }
    })
  })

  it('refuses combinations that could do nothing, and bad values, naming the key', () => {
    assert.deepEqual(issuePaths({ mode: 'loopback', upnp: true }), ['network.upnp'])
    assert.deepEqual(issuePaths({ mode: 'loopback', autonat: true, upnp: true }), ['network.autonat', 'network.upnp'])
    assert.deepEqual(issuePaths({ dcutr: true }), ['network.dcutr'])
    assert.deepEqual(issuePaths({ mdns: 'yes' }), ['network.mdns'])
    assert.deepEqual(issuePaths({ mdns: { intervalMs: 10 } }), ['network.mdns.intervalMs'])
    assert.deepEqual(issuePaths({ relay: { server: { maxReservations: 0 } } }), ['network.relay.server.maxReservations'])
    assert.deepEqual(issuePaths({ relay: { client: 'on', hop: true } }), ['network.relay.client', 'network.relay.hop'])
    // what is meaningful is accepted: UPnP and AutoNAT on a LAN (a home router), DCUtR with a relay
    parseConfig({ network: { mode: 'lan', upnp: true, autonat: true } })
    parseConfig({ network: { relay: { server: true }, dcutr: true } })
  })

  it('the starter config lists every option with its default and parses as written', () => {
    const text = starterConfigText()
    for (const key of ['"mdns"', '"relay"', '"client"', '"server"', '"dcutr"', '"autonat"', '"upnp"']) assert.ok(text.includes(key), key)
    const n = parseConfig(parseConfigText(text, 'starter.json')).network
    assert.deepEqual(peerNetworkOptions(n), { network: 'internet', announce: [] })
  })

  describe('real nodes on 127.0.0.1', () => {
    let w: World
    before(async () => { w = await World.create() })
    after(async () => { await w.close() })
    const peerConfig = (net: Record<string, unknown>, bootstrap: string[] = []): Partial<DeploymentConfigInput> => ({
      sharing: 'share',
      network: { mode: 'loopback', ...net },
      sources: { bootstrap }
    })

    it('relay.server offers circuit relay v2; relay.client takes a reservation on it and announces the relayed address', async () => {
      const relay = await w.node('relay', {}, { followOnStart: false }, peerConfig({ relay: { server: true } }))
      const plain = await w.node('plain', {}, { followOnStart: false }, peerConfig({}))
      assert.ok(relay.peer?.libp2p.getProtocols().includes(HOP), 'the relay speaks the hop protocol')
      assert.ok(!(plain.peer?.libp2p.getProtocols() ?? []).includes(HOP), 'a default node is no relay')
      const relayId = relay.peer!.peerId.toString()
      const client = await w.node('client', {}, { followOnStart: false }, peerConfig({ relay: { client: true } }, relay.peer!.multiaddrs().map(String)))
      const circuit = await waitFor(async () => (await client.status()).peer?.relayed.find(a => a.includes(`/p2p/${relayId}/p2p-circuit/`)), 'a reservation on the relay', 60_000)
      assert.ok(circuit.endsWith(`/p2p-circuit/p2p/${client.peer!.peerId.toString()}`), circuit)
      assert.ok((await client.status()).peer?.addresses.includes(circuit), 'the relayed address is announced')
      assert.ok((await relay.status()).peer?.services.includes('relay'))
      assert.deepEqual((await plain.status()).peer?.services, ['dht', 'identify', 'ping'])
      // a node without the relay client never takes one, though it is connected to the relay too
      const other = await w.node('no-client', {}, { followOnStart: false }, peerConfig({}, relay.peer!.multiaddrs().map(String)))
      await waitFor(() => other.peer?.libp2p.getConnections().some(c => c.remotePeer.toString() === relayId), 'a connection to the relay', 60_000)
      assert.deepEqual((await other.status()).peer?.relayed, [])
    })
  })
})
