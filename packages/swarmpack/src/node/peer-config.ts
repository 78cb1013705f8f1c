/**
 * The deployment config's `network` section as the dht-provider peer's options: the mode (which
 * addresses the DHT keeps), listen and announce addresses, the connection limit, mDNS discovery
 * (on by default in `lan` mode) and the NAT services (relay client and server, DCUtR, AutoNAT,
 * UPnP). Pure, so the mapping is tested without starting a peer.
 */
import type { NatTraversalConfig, SwarmpackPeerConfig } from '@swarmpack/dht-provider'
import type { DeploymentConfig } from '../config/schema.js'

export type PeerNetworkOptions = Pick<SwarmpackPeerConfig, 'network' | 'listen' | 'announce' | 'maxConnections' | 'mdns' | 'nat'>

/** Whether mDNS discovery runs: as configured, else on in `lan` mode only. */
export function mdnsEnabled (network: DeploymentConfig['network']): boolean {
  return network.mdns === undefined ? network.mode === 'lan' : network.mdns !== false
}

export function peerNetworkOptions (network: DeploymentConfig['network']): PeerNetworkOptions {
  const nat: NatTraversalConfig = {}
  if (network.relay.client) nat.relayClient = true
  if (network.relay.server !== false) nat.relayServer = network.relay.server
  if (network.dcutr !== undefined) nat.holePunch = network.dcutr
  if (network.autonat) nat.autonat = true
  if (network.upnp) nat.upnp = true
  const mdns = network.mdns
  return {
    network: network.mode,
    announce: network.announce,
    ...(network.listen !== undefined ? { listen: network.listen } : {}),
    ...(network.maxConnections !== undefined ? { maxConnections: network.maxConnections } : {}),
    ...(mdnsEnabled(network) ? { mdns: typeof mdns === 'object' ? { interval: mdns.intervalMs } : true } : {}),
    ...(Object.keys(nat).length > 0 ? { nat } : {})
  }
}
