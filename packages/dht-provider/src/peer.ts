/**
 * The swarmpack peer: a libp2p node with TCP, noise, yamux, identify, ping and a Kademlia DHT,
 * built from swarmpack's network configuration. A host application may pass its own libp2p node
 * instead (it must run a kad-dht service); the swarmpack record validators are added to it.
 */
import '@swarmpack/core/polyfill'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNATv2 } from '@libp2p/autonat-v2'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { logger } from '@libp2p/logger'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { peerIdFromString } from '@libp2p/peer-id'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { multiaddr } from '@multiformats/multiaddr'
import { SwarmpackError, throwIfAborted } from '@swarmpack/core'
import { createLibp2p } from 'libp2p'
import { DhtErrorCode } from './errors.js'
import { loadOrCreatePeerKey } from './keys.js'
import { createSwarmpackDhtRecords, registerSwarmpackRecords, type HeadRecordFormat } from './records.js'
import { TrafficCounter } from './traffic.js'
import { withHalfWindowUpdates } from './yamux-window.js'
import type { Libp2p, PeerId, PrivateKey, AbortOptions } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('swarmpack:peer')

/** The private swarmpack DHT; peers on it never mix with the public IPFS DHT. */
export const SWARMPACK_DHT_PROTOCOL = '/swarmpack/kad/1.0.0'
/** The public IPFS (Amino) DHT. */
export const IPFS_DHT_PROTOCOL = '/ipfs/kad/1.0.0'

/**
 * Which addresses the DHT passes around: `internet` drops private addresses (the public
 * internet), `lan` keeps every address (a LAN or a lab), `loopback` keeps every address and lets
 * any number of local peers connect at once (tests, demos).
 */
export type NetworkMode = 'internet' | 'lan' | 'loopback'

export interface SwarmpackPeerConfig {
  /** Directory for the persistent peer key (`peer.key`). Without it, a fresh key per run. */
  dataDir?: string
  /** Use this key instead of the one in dataDir. */
  privateKey?: PrivateKey
  /** Listen multiaddrs. Default `/ip4/0.0.0.0/tcp/0` (`/ip4/127.0.0.1/tcp/0` in loopback mode). */
  listen?: string[]
  /** Addresses announced to other peers instead of the listen addresses (port forwarding). */
  announce?: string[]
  /** Multiaddrs with `/p2p/<id>` of peers to dial at start; the DHT fills its table from them. */
  bootstrap?: string[]
  /** `swarmpack` (default, private DHT), `ipfs` (public DHT) or a full protocol id. */
  dhtProtocol?: 'swarmpack' | 'ipfs' | string
  /** Default `internet`. */
  network?: NetworkMode
  /** Maximum open connections. Default 200. */
  maxConnections?: number
  /** Inbound connections per second accepted from one IP. Default 5 (libp2p's), 1000 on loopback. */
  inboundConnectionThreshold?: number
  /** CIDR multiaddrs never limited (e.g. `/ip4/10.0.0.0/ipcidr/8`). Loopback mode adds 127.0.0.0/8. */
  allow?: string[]
  /** Self-query interval of the DHT in ms (kad-dht's default 5 min; ours 15 min). */
  querySelfInterval?: number
  /**
   * libp2p's liveness ping on every connection, in ms, or false for none. Default 15 min:
   * libp2p's 10 s costs ~500 bytes per connection per ping (a new stream each time), the
   * largest part of idle upkeep; yamux keep-alive frames (~60 bytes) keep idle sockets open.
   */
  connectionPingInterval?: number | false
  /** yamux keep-alive ping interval in ms; must stay under the 2 min TCP inactivity timeout. Default 90 s. */
  keepAliveInterval?: number
  /**
   * How often the DHT refreshes each routing-table bucket with a random walk, in ms. kad-dht 16
   * uses 5 min and has no option for it; every walk queries up to k peers, so the default here
   * is 30 min. Queries and new connections keep the table current in between.
   */
  routingTableRefreshInterval?: number
  /** Count socket bytes (see `peer.traffic`). Default true. */
  countTraffic?: boolean
  /**
   * How index-head records are validated and selected (the node injects the trust package's head
   * verification). Without it this peer neither stores nor serves head records.
   */
  headRecords?: HeadRecordFormat
  /**
   * LAN discovery with mDNS (`@libp2p/mdns`): peers on one link find each other with no bootstrap
   * list; every peer found is dialled, so the DHT fills its table from them. Default off.
   */
  mdns?: boolean | { interval?: number }
  /** Reachability behind NATs. Everything is off by default. */
  nat?: NatTraversalConfig
}

/**
 * NAT traversal services (libp2p 3). A peer behind a NAT takes a circuit relay v2 reservation on a
 * public peer (`relayClient`), so others reach it through `/p2p-circuit` addresses, and DCUtR
 * (`holePunch`) upgrades such a relayed connection to a direct one where the NAT allows it.
 */
export interface NatTraversalConfig {
  /**
   * AutoNAT v2: ask peers to dial back our addresses, so we learn which are publicly reachable
   * (and answer their asks). Public addresses only; an unverified public address is not shared
   * with other peers (see `SwarmpackPeer.addressStatus`).
   */
  autonat?: boolean
  /** Listen on `/p2p-circuit`: take reservations on relays among our peers and announce the relayed addresses. */
  relayClient?: boolean
  /**
   * Act as a circuit relay v2 for others (a public peer). Relayed connections carry libp2p's
   * default limits (2 min, 128 KiB), too small for a package, and Bitswap does not run on limited
   * connections; `unlimited: true` lifts them, so a private swarm's own relay carries whole
   * transfers to and from peers that no hole punch reaches (at the cost of the relay's bandwidth).
   */
  relayServer?: boolean | { maxReservations?: number, unlimited?: boolean }
  /** DCUtR hole punching over relayed connections. Default: on when relayClient or relayServer is. */
  holePunch?: boolean
  /**
   * Map a port on a UPnP gateway (home routers; for IPv6, a pinhole in the router's firewall). Off
   * by default: with no gateway it only costs SSDP queries. `externalAddress`: the gateway's
   * public address when it can't tell (an IPv6-only gateway answers the IPv4-only
   * GetExternalIPAddress with nothing, and libp2p then maps nothing).
   */
  upnp?: boolean | { externalAddress?: string }
}

/**
 * One of our addresses as libp2p's address manager holds it. Public addresses (any not on
 * libp2p's private lists) start unverified and are shared with other peers only once verified,
 * e.g. by an AutoNAT dial-back (`nat.autonat`); private ones count as verified from the start.
 */
export interface AddressStatus {
  multiaddr: string
  verified: boolean
  /** `transport` (a listen address), `observed`, `announce`, `ip-mapping` (UPnP), `dns-mapping`. */
  type: string
  /** When the verdict should be checked again (ms epoch; 0: never checked). */
  expires: number
}

export interface SwarmpackPeer {
  readonly libp2p: Libp2p
  readonly dht: KadDHT
  readonly peerId: PeerId
  /** Byte counter at the transport; undefined when the host passed its own node. */
  readonly traffic?: TrafficCounter
  /** Addresses others can dial (with `/p2p/<id>`). */
  multiaddrs: () => Multiaddr[]
  /**
   * Every address of ours with whether it is verified (see AddressStatus): what AutoNAT concluded.
   * Empty if the libp2p node does not keep libp2p 3's address manager where it is read from.
   */
  addressStatus: () => AddressStatus[]
  /** Peers in the DHT routing table. */
  routingTableSize: () => number
  /**
   * Resolves once the routing table holds at least `min` peers (polling, no blind sleep). With
   * `refreshEvery`, asks the DHT to refresh its table that often while waiting.
   */
  waitForRoutingTable: (min?: number, options?: AbortOptions & { timeout?: number, refreshEvery?: number }) => Promise<number>
  /** Dials the bootstrap peers again (e.g. after they were all lost). */
  bootstrap: (options?: AbortOptions) => Promise<number>
  stop: () => Promise<void>
}

function configError (message: string, cause?: unknown): SwarmpackError {
  return new SwarmpackError(DhtErrorCode.INVALID_CONFIG, message, cause === undefined ? {} : { cause })
}

function parseAddrs (name: string, list: string[] | undefined): string[] {
  if (list === undefined) return []
  if (!Array.isArray(list)) throw configError(`${name} must be a list of multiaddrs`)
  for (const a of list) {
    try { multiaddr(a) } catch (err) { throw configError(`${name}: invalid multiaddr ${JSON.stringify(a)}`, err) }
  }
  return list
}

/** A peer id from its text form (`12D3KooW...`); ERR_DHT_INVALID_CONFIG if it is not one. */
export function parsePeerId (text: string): PeerId {
  try {
    return peerIdFromString(text)
  } catch (err) {
    throw new SwarmpackError(DhtErrorCode.INVALID_CONFIG, `not a peer id: ${JSON.stringify(text)}`, { cause: err, details: { peerId: text } })
  }
}

export function dhtProtocolName (name: string | undefined): string {
  if (name === undefined || name === 'swarmpack') return SWARMPACK_DHT_PROTOCOL
  if (name === 'ipfs') return IPFS_DHT_PROTOCOL
  if (!/^\/[\x21-\x7e]{1,200}$/.test(name)) throw configError(`invalid DHT protocol ${JSON.stringify(name)}`)
  return name
}

/** Finds the kad-dht service of a libp2p node, whatever name it was registered under. */
export function findDhtService (node: Libp2p): KadDHT {
  const services = node.services as Record<string, unknown>
  if (services.dht != null) return services.dht as KadDHT
  for (const s of Object.values(services)) {
    if (s != null && typeof (s as KadDHT).findProviders === 'function' && typeof (s as KadDHT).put === 'function') return s as KadDHT
  }
  throw configError('the libp2p node has no kad-dht service')
}

/**
 * kad-dht 16 refreshes its routing table every 5 min and takes no option for it; the interval is
 * a plain field of its refresh component, read each time the next refresh is scheduled.
 */
function setRoutingTableRefreshInterval (dht: KadDHT, ms: number): void {
  const refresh = (dht as unknown as { routingTableRefresh?: { refreshInterval?: number } }).routingTableRefresh
  if (refresh !== undefined && typeof refresh.refreshInterval === 'number') refresh.refreshInterval = ms
  else log('kad-dht has no routingTableRefresh.refreshInterval; keeping its default')
}

/** Builds and starts a swarmpack peer from config, or wraps a host's own libp2p node. */
export async function createSwarmpackPeer (config: SwarmpackPeerConfig | { libp2p: Libp2p, bootstrap?: string[], headRecords?: HeadRecordFormat } = {}): Promise<SwarmpackPeer> {
  if ('libp2p' in config) return wrapPeer(config.libp2p, parseAddrs('bootstrap', config.bootstrap), undefined, config.headRecords)

  const network = config.network ?? 'internet'
  if (!['internet', 'lan', 'loopback'].includes(network)) throw configError(`unknown network mode ${String(network)}`)
  const listen = parseAddrs('listen', config.listen ?? [network === 'loopback' ? '/ip4/127.0.0.1/tcp/0' : '/ip4/0.0.0.0/tcp/0'])
  const announce = parseAddrs('announce', config.announce)
  const bootstrap = parseAddrs('bootstrap', config.bootstrap)
  const allow = parseAddrs('allow', config.allow)
  if (network === 'loopback') allow.push('/ip4/127.0.0.0/ipcidr/8')
  const positive = (name: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isFinite(v) || v <= 0)) throw configError(`${name} must be a positive number`)
  }
  positive('maxConnections', config.maxConnections)
  positive('inboundConnectionThreshold', config.inboundConnectionThreshold)
  positive('querySelfInterval', config.querySelfInterval)
  if (config.connectionPingInterval !== false) positive('connectionPingInterval', config.connectionPingInterval)
  positive('keepAliveInterval', config.keepAliveInterval)
  positive('routingTableRefreshInterval', config.routingTableRefreshInterval)

  const privateKey = config.privateKey ?? (config.dataDir !== undefined ? await loadOrCreatePeerKey(config.dataDir) : undefined)
  const traffic = config.countTraffic === false ? undefined : new TrafficCounter()
  const records = createSwarmpackDhtRecords(config.headRecords)

  const nat = config.nat ?? {}
  const relayed = nat.relayClient === true || (nat.relayServer !== undefined && nat.relayServer !== false)
  const optional: Record<string, unknown> = {}
  // AutoNAT v2: its server dials back on a new connection (v1's, in @libp2p/autonat 3, reuses the
  // asking peer's connection, so it never verifies a TCP address and closes that connection)
  if (nat.autonat === true) optional.autoNAT = autoNATv2()
  if (nat.relayServer !== undefined && nat.relayServer !== false) {
    const init = typeof nat.relayServer === 'object' ? nat.relayServer : {}
    optional.relay = circuitRelayServer({ reservations: { maxReservations: init.maxReservations ?? 64, applyDefaultLimit: init.unlimited !== true } })
  }
  if (nat.holePunch ?? relayed) optional.dcutr = dcutr()
  if (nat.upnp !== undefined && nat.upnp !== false) optional.upnp = uPnPNAT(typeof nat.upnp === 'object' && nat.upnp.externalAddress !== undefined ? { externalAddress: nat.upnp.externalAddress } : {})
  if (nat.relayClient === true) listen.push('/p2p-circuit')
  const mdnsInit = config.mdns === true ? {} : config.mdns === false || config.mdns === undefined ? undefined : config.mdns

  const node = await createLibp2p({
    ...(privateKey !== undefined ? { privateKey } : {}),
    addresses: { listen, announce },
    transports: relayed ? [tcp(), circuitRelayTransport()] : [tcp()],
    ...(mdnsInit !== undefined ? { peerDiscovery: [mdns(mdnsInit)] } : {}),
    connectionEncrypters: [noise()],
    streamMuxers: [withHalfWindowUpdates(yamux({ enableKeepAlive: true, keepAliveInterval: config.keepAliveInterval ?? 90_000 }))],
    connectionManager: {
      maxConnections: config.maxConnections ?? 200,
      inboundConnectionThreshold: config.inboundConnectionThreshold ?? (network === 'loopback' ? 1000 : 5),
      allow
    },
    // libp2p pings every connection every 10 s by default; idle upkeep stays low with less
    connectionMonitor: config.connectionPingInterval === false
      ? { enabled: false }
      : { pingInterval: config.connectionPingInterval ?? 15 * 60_000 },
    ...(traffic !== undefined ? { metrics: traffic.metrics() } : {}),
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: dhtProtocolName(config.dhtProtocol),
        clientMode: false,
        peerInfoMapper: network === 'internet' ? removePrivateAddressesMapper : passthroughMapper,
        validators: records.validators,
        selectors: records.selectors,
        querySelfInterval: config.querySelfInterval ?? 15 * 60_000
      }),
      ...optional
    }
  })
  if (mdnsInit !== undefined) dialDiscovered(node as unknown as Libp2p)
  setRoutingTableRefreshInterval(findDhtService(node as unknown as Libp2p), config.routingTableRefreshInterval ?? 30 * 60_000)
  log('started %p on %s', node.peerId, node.getMultiaddrs().map(String).join(' '))
  return wrapPeer(node as unknown as Libp2p, bootstrap, traffic, undefined, false)
}

/** The part of libp2p's (internal) AddressManager that addressStatus reads. */
interface AddressView {
  getAddressesWithMetadata: () => Array<{ multiaddr: Multiaddr, verified: boolean, type: string, expires: number }>
}

function addressStatusOf (node: Libp2p): AddressStatus[] {
  // libp2p 3 has no public accessor for the address manager's verdicts; its node keeps its
  // components (the address manager among them) in a `components` field
  const manager = (node as unknown as { components?: { addressManager?: AddressView } }).components?.addressManager
  if (manager === undefined || typeof manager.getAddressesWithMetadata !== 'function') return []
  return manager.getAddressesWithMetadata().map(a => ({ multiaddr: a.multiaddr.toString(), verified: a.verified, type: a.type, expires: a.expires }))
}

/** Dials peers found by mDNS (libp2p 3 does not dial discovered peers by itself). */
function dialDiscovered (node: Libp2p): void {
  node.addEventListener('peer:discovery', (evt) => {
    const id = evt.detail.id
    if (id.equals(node.peerId) || node.getConnections(id).length > 0) return
    log('mdns found %p, dialling', id)
    node.dial(id, { signal: AbortSignal.timeout(30_000) }).catch((err: Error) => { log('dialling %p found by mdns failed: %s', id, err.message) })
  })
}

async function wrapPeer (node: Libp2p, bootstrapAddrs: string[], traffic: TrafficCounter | undefined, headRecords: HeadRecordFormat | undefined, register = true): Promise<SwarmpackPeer> {
  const dht = findDhtService(node)
  if (register) registerSwarmpackRecords(dht, createSwarmpackDhtRecords(headRecords))
  const routingTableSize = (): number => (dht as unknown as { routingTable?: { size: number } }).routingTable?.size ?? 0

  const bootstrap = async (options: AbortOptions = {}): Promise<number> => {
    const results = await Promise.allSettled(bootstrapAddrs.map(async a => node.dial(multiaddr(a), options)))
    const ok = results.filter(r => r.status === 'fulfilled').length
    results.forEach((r, i) => { if (r.status === 'rejected') log('bootstrap dial %s failed: %s', bootstrapAddrs[i], (r.reason as Error).message) })
    return ok
  }

  const waitForRoutingTable = async (min = 1, options: AbortOptions & { timeout?: number, refreshEvery?: number } = {}): Promise<number> => {
    const deadline = Date.now() + (options.timeout ?? 30_000)
    let lastRefresh = Date.now()
    while (routingTableSize() < min) {
      if (options.refreshEvery !== undefined && Date.now() - lastRefresh >= options.refreshEvery) {
        lastRefresh = Date.now()
        dht.refreshRoutingTable().catch(() => {})
      }
      throwIfAborted(options.signal)
      if (Date.now() > deadline) {
        throw new SwarmpackError(DhtErrorCode.QUERY_FAILED, `routing table has ${routingTableSize()} peers, wanted ${min}`)
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    return routingTableSize()
  }

  // while the routing table is empty (bootstrap peers down or slow), dial them again now and then
  let rejoin: ReturnType<typeof setInterval> | undefined
  if (bootstrapAddrs.length > 0) {
    await bootstrap()
    rejoin = setInterval(() => {
      if (routingTableSize() > 0 || node.status !== 'started') return
      // connected yet absent from the table (the DHT's check of a new contact timed out, e.g.
      // on a loaded machine): reconnecting makes the DHT consider the peer again
      void (async () => {
        for (const a of bootstrapAddrs) {
          const id = a.match(/\/p2p\/([^/]+)/)?.[1] ?? null
          if (id !== null) {
            const conns = node.getConnections().filter(c => c.remotePeer.toString() === id)
            await Promise.all(conns.map(async c => c.close().catch(() => {})))
          }
        }
        await bootstrap()
      })()
    }, 10_000)
    rejoin.unref?.()
  }

  return {
    libp2p: node,
    dht,
    peerId: node.peerId,
    traffic,
    multiaddrs: () => node.getMultiaddrs(),
    addressStatus: () => addressStatusOf(node),
    routingTableSize,
    waitForRoutingTable,
    bootstrap,
    stop: async () => {
      clearInterval(rejoin)
      await node.stop()
    }
  }
}
