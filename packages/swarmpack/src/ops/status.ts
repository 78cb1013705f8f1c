/**
 * `status()` (S1): one report of the node's state for humans and scripts: peer id, addresses,
 * connections, the DHT (protocol, routing table, last refresh), each followed indexer's head
 * (version, age, where it came from), the cache (size, limit, pinned bytes), each installed
 * package with the sources of its last fetch, the update and scrub schedules, the idle upkeep
 * rate and the recent errors with their codes. Reads local state only; never waits on the network.
 */
import { openIndexHead } from '@swarmpack/trust'
import type { DeploymentConfig } from '../config/schema.js'
import type { OpsHost } from './host.js'
import type { FetchRecord, OpsState, RecentError } from './journal.js'
import { peerStatus, type PeerStatus, type UpkeepMeter, type UpkeepRate } from './network.js'
import { reachable } from './cache.js'

export interface IndexerStatus {
  id: string
  /** Accepted head version (none yet: undefined). */
  version?: number
  issued?: number
  expires?: number
  /** Milliseconds since the accepted head was issued. */
  ageMs?: number
  /** Where the head was last read from (`dht`, a mirror URL, a directory) and when. */
  source?: string
  followedAt?: number
  /** The last follow's failure, if it failed. */
  error?: { code: string, message: string }
}

export interface PackageStatus {
  name: string
  version: string
  root: string
  size: number
  /** The sources its last fetch came from (blocks and bytes per source). */
  lastFetch?: FetchRecord
}

export interface NodeStatus {
  at: number
  dataDir: string
  sharing: DeploymentConfig['sharing']
  generation?: number
  /** Undefined when the node runs no peer (`sharing: off`, `network: false`). */
  peer?: PeerStatus
  indexers: IndexerStatus[]
  cache: { bytes: number, blocks: number, limit?: number, pinnedBytes: number, pins: number, overLimit: boolean }
  packages: PackageStatus[]
  updates: { policy: string, intervalMs: number, window?: { start: string, end: string, utc: boolean }, watching: boolean, lastCheck?: OpsState['lastUpdateCheck'] }
  scrub: { intervalMs: number, rateBytesPerSec: number, last?: OpsState['lastScrub'] }
  /** Idle DHT upkeep (bytes/s at the sockets), once measured. */
  upkeep?: UpkeepRate
  errors: RecentError[]
}

export async function nodeStatus (host: OpsHost, extra: { watching: boolean, upkeep?: UpkeepMeter }): Promise<NodeStatus> {
  const { node, journal } = host
  const config = node.config
  const now = host.now()
  const indexers: IndexerStatus[] = []
  for (const ix of config.indexers) {
    const s: IndexerStatus = { id: ix.id }
    const st = await node.verifier.state.read(ix.id).catch(() => undefined)
    if (st !== undefined) {
      s.version = st.version
      try {
        const head = openIndexHead(st.head)
        s.issued = head.issued
        s.expires = head.expires
        s.ageMs = now - head.issued
      } catch { /* an unreadable stored head shows as version only */ }
    }
    const f = journal.state.follows[ix.id]
    if (f !== undefined) {
      if (f.source !== undefined) s.source = f.source
      s.followedAt = f.at
      if (f.error !== undefined) s.error = f.error
    }
    indexers.push(s)
  }
  const g = await node.generations.current()
  const packages: PackageStatus[] = Object.values(g?.packages ?? {}).sort((a, b) => a.name < b.name ? -1 : 1).map(p => {
    const rec = journal.state.fetches[`${p.name}@${p.version}`]
    return { name: p.name, version: p.version, root: p.root, size: p.size, ...(rec !== undefined ? { lastFetch: rec } : {}) }
  })
  const s = node.store.stats()
  const manifests = new Set<string>()
  for (const gen of await node.generations.list()) for (const p of Object.values(gen.lock.packages)) manifests.add(p.manifest)
  const pinned = await reachable(node.store, node.store.pins().map(p => p.root.toString()), manifests)
  const limit = Number.isFinite(s.maxSize) ? s.maxSize : config.cache.maxSize
  const upkeep = extra.upkeep?.rate()
  return {
    at: now,
    dataDir: node.dataDir,
    sharing: config.sharing,
    ...(g !== undefined ? { generation: g.number } : {}),
    ...(node.peer !== undefined ? { peer: peerStatus(node.peer, config) } : {}),
    indexers,
    cache: { bytes: s.bytes, blocks: s.blocks, ...(limit !== undefined ? { limit } : {}), pinnedBytes: pinned.bytes, pins: s.pins, overLimit: limit !== undefined && s.bytes > limit },
    packages,
    updates: {
      policy: config.updates.policy,
      intervalMs: config.updates.intervalMs,
      ...(config.updates.window !== undefined ? { window: config.updates.window } : {}),
      watching: extra.watching,
      ...(journal.state.lastUpdateCheck !== undefined ? { lastCheck: journal.state.lastUpdateCheck } : {})
    },
    scrub: { intervalMs: config.scrub.intervalMs, rateBytesPerSec: config.scrub.rateBytesPerSec, ...(journal.state.lastScrub !== undefined ? { last: journal.state.lastScrub } : {}) },
    ...(upkeep !== undefined ? { upkeep } : {}),
    errors: [...journal.state.errors].reverse()
  }
}
