/**
 * The network side of diagnostics (S1, S4): what the peer listens on and announces, who it is
 * connected to, the DHT it speaks and how full its routing table is, when the table was last
 * refreshed, and the idle upkeep traffic measured at the sockets (sampled on an unref'd timer).
 */
import type { SwarmpackPeer } from '@swarmpack/dht-provider'
import type { KadDHT } from '@libp2p/kad-dht'
import type { DeploymentConfig } from '../config/schema.js'
import { sleep } from './throttle.js'

export interface PeerStatus {
  id: string
  /** Addresses others can dial (announce addresses when set, else the bound ones), with /p2p/<id>. */
  addresses: string[]
  /** Listen addresses as bound (port 0 resolved). */
  listening: string[]
  /** `network.announce` from the config. */
  announce: string[]
  connections: number
  peers: Array<{ id: string, address: string, direction: string }>
  dht: {
    /** The protocol id spoken, e.g. /swarmpack/kad/1.0.0 (private) or /ipfs/kad/1.0.0. */
    protocol?: string
    routingTable: number
    /** When the routing table was last refreshed by a walk (ms since epoch), if it has been. */
    lastRefresh?: number
  }
  traffic?: { sent: number, received: number, connections: number }
  maxConnections?: number
  /** The libp2p services running (`dht`, `identify`, `ping`, and `relay`, `dcutr`, `autoNAT`, `upnp` when configured). */
  services: string[]
  /** Relayed addresses (`…/p2p-circuit/p2p/<id>`) held through reservations on relays (`network.relay.client`). */
  relayed: string[]
}

/** Reads kad-dht 16's refresh timestamps (a plain field of its refresh component). */
export function lastRoutingRefresh (dht: KadDHT): number | undefined {
  const at = (dht as unknown as { routingTableRefresh?: { commonPrefixLengthRefreshedAt?: Date[] } }).routingTableRefresh?.commonPrefixLengthRefreshedAt
  if (!Array.isArray(at)) return undefined
  const t = Math.max(0, ...at.map(d => d instanceof Date ? d.getTime() : 0))
  return t > 0 ? t : undefined
}

export function peerStatus (peer: SwarmpackPeer, config: DeploymentConfig): PeerStatus {
  const node = peer.libp2p
  const conns = node.getConnections()
  const protocol = node.getProtocols().find(p => p.includes('/kad/'))
  const lastRefresh = lastRoutingRefresh(peer.dht)
  // the bound listen addresses are not on libp2p's public interface; read them when present
  const tm = (node as unknown as { components?: { transportManager?: { getAddrs?: () => unknown[] } } }).components?.transportManager
  const listening = tm?.getAddrs?.() ?? []
  return {
    id: peer.peerId.toString(),
    addresses: peer.multiaddrs().map(String),
    listening: listening.map(String),
    announce: [...config.network.announce],
    connections: conns.length,
    peers: conns.map(c => ({ id: c.remotePeer.toString(), address: c.remoteAddr.toString(), direction: c.direction })),
    dht: { ...(protocol !== undefined ? { protocol } : {}), routingTable: peer.routingTableSize(), ...(lastRefresh !== undefined ? { lastRefresh } : {}) },
    ...(peer.traffic !== undefined ? { traffic: peer.traffic.totals() } : {}),
    ...(config.network.maxConnections !== undefined ? { maxConnections: config.network.maxConnections } : {}),
    services: Object.keys(node.services as Record<string, unknown>).sort(),
    relayed: peer.multiaddrs().map(String).filter(a => a.includes('/p2p-circuit'))
  }
}

export interface UpkeepRate {
  /** Bytes per second sent + received over the measured idle time. */
  bytesPerSec: number
  /** Idle seconds the rate is measured over (samples with fetches are left out). */
  seconds: number
  samples: number
}

/**
 * Samples the peer's socket byte counter every `sampleMs`; intervals during which the node
 * fetched something are not idle and are left out of the upkeep rate.
 */
export class UpkeepMeter {
  private readonly samples: Array<{ at: number, bytes: number, busy: boolean }> = []
  private timer?: ReturnType<typeof setInterval>
  private busy = false

  constructor (private readonly peer: SwarmpackPeer, private readonly sampleMs = 60_000, private readonly keep = 60) {}

  start (): void {
    if (this.peer.traffic === undefined) return
    this.sample()
    this.timer = setInterval(() => { this.sample() }, this.sampleMs)
    this.timer.unref?.()
  }

  /** Marks the current interval as not idle (a fetch, a publish). */
  markBusy (): void {
    this.busy = true
  }

  private sample (): void {
    const t = this.peer.traffic?.totals()
    if (t === undefined) return
    this.samples.push({ at: Date.now(), bytes: t.sent + t.received, busy: this.busy })
    this.busy = false
    if (this.samples.length > this.keep + 1) this.samples.shift()
  }

  /** The idle upkeep rate over the kept samples, or undefined before two samples exist. */
  rate (): UpkeepRate | undefined {
    let bytes = 0
    let ms = 0
    let n = 0
    for (let i = 1; i < this.samples.length; i++) {
      if (this.samples[i].busy) continue
      bytes += this.samples[i].bytes - this.samples[i - 1].bytes
      ms += this.samples[i].at - this.samples[i - 1].at
      n++
    }
    if (n === 0 || ms <= 0) return undefined
    return { bytesPerSec: bytes / (ms / 1000), seconds: ms / 1000, samples: n }
  }

  /** Measures for `ms` now (doctor on demand): the bytes the sockets moved meanwhile. */
  async measure (ms: number, signal?: AbortSignal): Promise<UpkeepRate | undefined> {
    const a = this.peer.traffic?.totals()
    if (a === undefined) return undefined
    const t0 = Date.now()
    await sleep(ms, signal)
    const b = this.peer.traffic?.totals()
    if (b === undefined) return undefined
    const seconds = (Date.now() - t0) / 1000
    return { bytesPerSec: (b.sent + b.received - a.sent - a.received) / seconds, seconds, samples: 1 }
  }

  stop (): void {
    clearInterval(this.timer)
  }
}
