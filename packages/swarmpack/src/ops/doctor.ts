/**
 * `doctor()` (S1): runs checks and reports each finding with a stable code and a suggested fix:
 * listen ports bound, bootstrap peers answer, the DHT reachable, mirrors healthy (and their clock),
 * clock skew against head timestamps, followed heads fresh, a sample of the store re-hashed, the
 * idle DHT upkeep rate, the cache against its limit. Every network check is bounded in time.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { request } from 'undici'
import { decodeManifest, isSwarmpackError, type FsBlockstore } from '@swarmpack/core'
import { openIndexHead } from '@swarmpack/trust'
import { SwarmpackNodeErrorCode } from '../errors.js'
import type { OpsHost } from './host.js'
import type { UpkeepMeter, UpkeepRate } from './network.js'

export type FindingStatus = 'ok' | 'warn' | 'fail' | 'skip'

export interface Finding {
  /** `listen`, `bootstrap`, `dht`, `mirror`, `clock`, `head`, `store`, `upkeep`, `cache`. */
  check: string
  status: FindingStatus
  /** Set for warn and fail: one of SwarmpackNodeErrorCode. */
  code?: string
  message: string
  /** What to do about it. */
  fix?: string
  details?: Record<string, unknown>
}

export interface DoctorOptions {
  signal?: AbortSignal
  /** Per network check (dial, ping, DHT query, mirror request), ms. Default 5000. */
  timeoutMs?: number
  /** Blocks re-hashed in the store sample. Default 64. */
  sample?: number
  /** Measure idle upkeep for this long now (ms) instead of using the node's running samples. */
  upkeepMs?: number
}

export interface DoctorReport {
  at: number
  ms: number
  /** No check failed. */
  ok: boolean
  findings: Finding[]
}

/** Idle DHT upkeep targets, bytes/s: under `good` is fine, over `limit` fails. */
export const UPKEEP_TARGET = { good: 100, limit: 300 }

const ok = (check: string, message: string, details?: Record<string, unknown>): Finding => ({ check, status: 'ok', message, ...(details !== undefined ? { details } : {}) })

function bound (signal: AbortSignal | undefined, ms: number): AbortSignal {
  return signal !== undefined ? AbortSignal.any([signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms)
}

function portOf (addr: string): string | undefined {
  return /\/(?:tcp|udp)\/(\d+)/.exec(addr)?.[1]
}

function listenChecks (host: OpsHost): Finding[] {
  const peer = host.node.peer
  if (peer === undefined) return [{ check: 'listen', status: 'skip', message: 'no peer runs in this process (sharing off or network disabled)' }]
  const tm = (peer.libp2p as unknown as { components?: { transportManager?: { getAddrs?: () => unknown[] } } }).components?.transportManager
  const bound = (tm?.getAddrs?.() ?? peer.libp2p.getMultiaddrs()).map(String)
  if (bound.length === 0) {
    return [{ check: 'listen', status: 'fail', code: SwarmpackNodeErrorCode.LISTEN_NOT_BOUND, message: 'the peer listens on no address', fix: 'set network.listen to a free local address, e.g. /ip4/0.0.0.0/tcp/4001' }]
  }
  const out: Finding[] = []
  for (const want of host.node.config.network.listen ?? []) {
    const port = portOf(want)
    if (port === undefined || port === '0') continue
    if (!bound.some(b => portOf(b) === port)) {
      out.push({ check: 'listen', status: 'fail', code: SwarmpackNodeErrorCode.LISTEN_NOT_BOUND, message: `${want} is not bound (bound: ${bound.join(' ')})`, fix: `free port ${port} or change network.listen` })
    }
  }
  if (out.length === 0) out.push(ok('listen', `listening on ${bound.join(' ')}`, { bound, announce: host.node.config.network.announce }))
  return out
}

async function bootstrapChecks (host: OpsHost, o: Required<Pick<DoctorOptions, 'timeoutMs'>> & DoctorOptions): Promise<Finding[]> {
  const peer = host.node.peer
  const boot = host.node.config.sources.bootstrap
  if (peer === undefined || boot.length === 0) return [{ check: 'bootstrap', status: 'skip', message: peer === undefined ? 'no peer' : 'no bootstrap peers configured (sources.bootstrap)' }]
  const ping = (peer.libp2p.services as Record<string, unknown>).ping as { ping?: (ma: unknown, opts: { signal: AbortSignal }) => Promise<number> } | undefined
  return Promise.all(boot.map(async (addr): Promise<Finding> => {
    const t0 = Date.now()
    try {
      const ma = multiaddr(addr)
      if (ping?.ping !== undefined) await ping.ping(ma, { signal: bound(o.signal, o.timeoutMs) })
      else await peer.libp2p.dial(ma, { signal: bound(o.signal, o.timeoutMs) })
      return ok('bootstrap', `${addr} answered in ${Date.now() - t0} ms`, { addr, ms: Date.now() - t0 })
    } catch (err) {
      return { check: 'bootstrap', status: 'fail', code: SwarmpackNodeErrorCode.BOOTSTRAP_UNREACHABLE, message: `${addr} did not answer: ${(err as Error).message}`, fix: 'check that the bootstrap peer runs and that its address and /p2p id in sources.bootstrap are current; check firewalls', details: { addr } }
    }
  }))
}

async function dhtCheck (host: OpsHost, o: Required<Pick<DoctorOptions, 'timeoutMs'>> & DoctorOptions): Promise<Finding> {
  const peer = host.node.peer
  if (peer === undefined) return { check: 'dht', status: 'skip', message: 'no peer' }
  const table = peer.routingTableSize()
  if (table === 0) {
    return { check: 'dht', status: 'fail', code: SwarmpackNodeErrorCode.DHT_UNREACHABLE, message: 'the DHT routing table is empty: this node knows no DHT peer', fix: 'add reachable peers to sources.bootstrap; on a LAN or one machine set network.mode to lan or loopback (internet mode drops private addresses); make sure every peer uses the same sources.dhtProtocol' }
  }
  let found = 0
  try {
    for await (const evt of peer.dht.getClosestPeers(peer.peerId.toMultihash().bytes, { signal: bound(o.signal, o.timeoutMs) })) {
      if ((evt as { name?: string }).name === 'FINAL_PEER') found++
    }
  } catch (err) {
    if (found === 0) return { check: 'dht', status: 'warn', code: SwarmpackNodeErrorCode.DHT_UNREACHABLE, message: `routing table holds ${table} peers but a DHT query failed: ${(err as Error).message}`, fix: 'peers in the table may be gone; wait for the next refresh or restart with fresh bootstrap peers', details: { routingTable: table } }
  }
  return ok('dht', `routing table ${table} peers; a query reached ${found}`, { routingTable: table, queried: found })
}

interface MirrorProbe { findings: Finding[], skews: Array<{ url: string, skewMs: number }> }

async function mirrorChecks (host: OpsHost, o: Required<Pick<DoctorOptions, 'timeoutMs'>> & DoctorOptions): Promise<MirrorProbe> {
  const config = host.node.config
  const out: MirrorProbe = { findings: [], skews: [] }
  const probes: Array<{ base: string, path: string, what: string }> = []
  for (const m of config.sources.mirrors) {
    if (m.kind === 'gateway') probes.push({ base: m.url, path: 'ipfs/bafkqaaa?format=raw', what: 'gateway liveness' })
    else for (const ix of config.indexers) probes.push({ base: m.url, path: `indexes/${ix.id}/head`, what: `head of ${ix.id}` })
    if (m.kind === 'mirror' && config.indexers.length === 0) probes.push({ base: m.url, path: '', what: 'root' })
  }
  for (const ix of config.indexers) for (const url of ix.heads.mirrors) if (!config.sources.mirrors.some(m => m.url === url)) probes.push({ base: url, path: `indexes/${ix.id}/head`, what: `head of ${ix.id}` })
  if (probes.length === 0) return { findings: [{ check: 'mirror', status: 'skip', message: 'no HTTP mirrors configured' }], skews: [] }
  const dispatcher = host.dispatcher()
  await Promise.all(probes.map(async (p) => {
    const url = new URL(p.path, p.base.endsWith('/') ? p.base : p.base + '/').toString()
    const t0 = Date.now()
    try {
      const res = await request(url, { method: 'GET', signal: bound(o.signal, o.timeoutMs), ...(dispatcher !== undefined ? { dispatcher } : {}), headers: p.what === 'gateway liveness' ? { accept: 'application/vnd.ipld.raw' } : {} })
      await res.body.dump()
      const ms = Date.now() - t0
      const date = res.headers.date
      if (typeof date === 'string' && !Number.isNaN(Date.parse(date))) {
        // the Date header has 1 s resolution and the request took `ms`: take the midpoint
        out.skews.push({ url: p.base, skewMs: Date.parse(date) + 500 - (t0 + ms / 2) })
      }
      if (res.statusCode >= 200 && res.statusCode < 300) {
        out.findings.push(ok('mirror', `${url} answered ${res.statusCode} in ${ms} ms (${p.what})`, { url, status: res.statusCode, ms }))
      } else if (res.statusCode === 404 && p.what.startsWith('head of')) {
        out.findings.push({ check: 'mirror', status: 'warn', code: SwarmpackNodeErrorCode.MIRROR_UNHEALTHY, message: `${url}: 404, the mirror does not publish the ${p.what}`, fix: 'export the index to this mirror (swarmpack mirror export / the indexer\'s mirrorDir), or list it under sources.mirrors only for blocks', details: { url, status: 404 } })
      } else {
        out.findings.push({ check: 'mirror', status: 'fail', code: SwarmpackNodeErrorCode.MIRROR_UNHEALTHY, message: `${url} answered ${res.statusCode} (${p.what})`, fix: 'check the mirror server\'s configuration and logs', details: { url, status: res.statusCode } })
      }
    } catch (err) {
      out.findings.push({ check: 'mirror', status: 'fail', code: SwarmpackNodeErrorCode.MIRROR_UNHEALTHY, message: `${url} did not answer: ${(err as Error).message}`, fix: 'check the URL, that the server runs, DNS, and the HTTP proxy settings (network.proxy, HTTP_PROXY, NO_PROXY)', details: { url } })
    }
  }))
  return out
}

async function headChecks (host: OpsHost, skews: MirrorProbe['skews']): Promise<Finding[]> {
  const { node } = host
  const now = host.now()
  const skewMs = node.config.trust.clockSkewMs ?? 5 * 60_000
  const out: Finding[] = []
  const clock: Finding[] = []
  for (const s of skews) {
    if (Math.abs(s.skewMs) > Math.max(skewMs, 2000)) {
      clock.push({ check: 'clock', status: 'fail', code: SwarmpackNodeErrorCode.CLOCK_SKEW, message: `this clock is ${Math.round(-s.skewMs / 1000)} s ${s.skewMs < 0 ? 'ahead of' : 'behind'} ${s.url} (its Date header)`, fix: 'synchronise the system clock (NTP: timedatectl set-ntp true, chrony); heads are refused outside their validity window', details: { url: s.url, skewMs: Math.round(s.skewMs) } })
    }
  }
  for (const ix of node.config.indexers) {
    const st = await node.verifier.state.read(ix.id).catch(() => undefined)
    const f = host.journal.state.follows[ix.id]
    if (st === undefined) {
      out.push({ check: 'head', status: 'fail', code: SwarmpackNodeErrorCode.HEAD_STALE, message: `no head accepted for ${ix.id}${f?.error !== undefined ? ` (${f.error.code}: ${f.error.message})` : ''}`, fix: 'check the indexer\'s head sources (indexers[].heads, sources.mirrors, the DHT) and its keys in the config; then follow again', details: { indexer: ix.id } })
      continue
    }
    const head = openIndexHead(st.head)
    if (head.issued > now + skewMs) {
      clock.push({ check: 'clock', status: 'fail', code: SwarmpackNodeErrorCode.CLOCK_SKEW, message: `the accepted head of ${ix.id} was issued ${Math.round((head.issued - now) / 1000)} s in this clock's future`, fix: 'synchronise the system clock (NTP)', details: { indexer: ix.id, issued: head.issued } })
    }
    if (head.expires <= now) {
      out.push({ check: 'head', status: 'fail', code: SwarmpackNodeErrorCode.HEAD_STALE, message: `the head of ${ix.id} (version ${head.version}) expired ${new Date(head.expires).toISOString()}: its index is frozen`, fix: 'the indexer must publish a fresh version; if it did, check that this node reaches its head sources (or the clock is ahead)', details: { indexer: ix.id, version: head.version, expires: head.expires } })
    } else if (f?.error !== undefined) {
      out.push({ check: 'head', status: 'warn', code: SwarmpackNodeErrorCode.HEAD_STALE, message: `the last follow of ${ix.id} failed (${f.error.code}: ${f.error.message}); version ${head.version} stays in force`, fix: 'check the head sources; `swarmpack update` follows again', details: { indexer: ix.id } })
    } else if (head.expires - now < 24 * 3600_000) {
      out.push({ check: 'head', status: 'warn', code: SwarmpackNodeErrorCode.HEAD_STALE, message: `the head of ${ix.id} expires within a day (${new Date(head.expires).toISOString()})`, fix: 'the indexer should publish a new version before then', details: { indexer: ix.id } })
    } else {
      out.push(ok('head', `${ix.id} version ${head.version}, issued ${Math.round((now - head.issued) / 1000)} s ago${f?.source !== undefined ? ` (from ${f.source})` : ''}`, { indexer: ix.id, version: head.version }))
    }
  }
  if (clock.length === 0 && (skews.length > 0 || node.config.indexers.length > 0)) clock.push(ok('clock', `no skew seen${skews.length > 0 ? ` (mirrors: ${skews.map(s => `${Math.round(s.skewMs)} ms`).join(', ')})` : ''}`))
  return [...clock, ...out]
}

/** Re-hashes a random sample of the blocks installed packages use (and the pinned roots). */
async function storeSample (host: OpsHost, sample: number, signal?: AbortSignal): Promise<Finding> {
  const store: FsBlockstore = host.node.store
  const candidates: CID[] = store.pins().map(p => p.root)
  const g = await host.node.generations.current()
  for (const p of Object.values(g?.packages ?? {})) {
    try {
      const m = await decodeManifest(CID.parse(p.root), { get: async cid => store.getBytes(cid, { touch: false }) }, signal !== undefined ? { signal } : {})
      for (const e of m.entries) if (e.type === 'file') for (const [c] of e.chunks) candidates.push(c)
    } catch { /* a missing manifest shows up below as missing */ }
  }
  const picked = new Map<string, CID>()
  while (picked.size < Math.min(sample, candidates.length)) {
    const c = candidates[Math.floor(Math.random() * candidates.length)]
    picked.set(c.toString(), c)
  }
  const corrupt: string[] = []
  const missing: string[] = []
  for (const c of picked.values()) {
    try {
      await store.getBytes(c, { verify: true, touch: false, ...(signal !== undefined ? { signal } : {}) })
    } catch (err) {
      if (isSwarmpackError(err, 'ERR_CORRUPT_BLOCK')) corrupt.push(c.toString())
      else if (isSwarmpackError(err, 'ERR_NOT_FOUND')) missing.push(c.toString())
      else throw err
    }
  }
  if (corrupt.length > 0) return { check: 'store', status: 'fail', code: SwarmpackNodeErrorCode.BLOCK_CORRUPT, message: `${corrupt.length} of ${picked.size} sampled blocks were corrupt (now removed)`, fix: 'run a scrub (swarmpack verify): it re-hashes everything and fetches removed blocks again; check the disk (SMART, dmesg)', details: { corrupt } }
  if (missing.length > 0) return { check: 'store', status: 'warn', code: SwarmpackNodeErrorCode.BLOCK_UNRECOVERABLE, message: `${missing.length} of ${picked.size} sampled pinned blocks are missing`, fix: 'run a scrub (swarmpack verify) to fetch them again', details: { missing } }
  return ok('store', `${picked.size} sampled blocks re-hashed, all intact`, { sampled: picked.size })
}

function upkeepFinding (rate: UpkeepRate | undefined): Finding {
  if (rate === undefined) return { check: 'upkeep', status: 'skip', message: 'idle upkeep not measured yet (the node samples its traffic every minute; or pass upkeepMs)' }
  const r = Math.round(rate.bytesPerSec * 10) / 10
  const details = { bytesPerSec: r, seconds: Math.round(rate.seconds), target: UPKEEP_TARGET }
  if (rate.bytesPerSec > UPKEEP_TARGET.limit) return { check: 'upkeep', status: 'fail', code: SwarmpackNodeErrorCode.UPKEEP_HIGH, message: `idle DHT upkeep ${r} B/s over ${Math.round(rate.seconds)} s (limit ${UPKEEP_TARGET.limit} B/s)`, fix: 'lower network.maxConnections, or check for a peer that keeps reconnecting (status().peer.peers); libp2p connection pings every 10 s are the usual cause', details }
  if (rate.bytesPerSec > UPKEEP_TARGET.good) return { check: 'upkeep', status: 'warn', code: SwarmpackNodeErrorCode.UPKEEP_HIGH, message: `idle DHT upkeep ${r} B/s over ${Math.round(rate.seconds)} s (aim under ${UPKEEP_TARGET.good} B/s)`, fix: 'fewer connections lower it (network.maxConnections)', details }
  return ok('upkeep', `idle DHT upkeep ${r} B/s over ${Math.round(rate.seconds)} s (target under ${UPKEEP_TARGET.good} B/s)`, details)
}

function cacheFinding (host: OpsHost): Finding {
  const s = host.node.store.stats()
  const limit = host.node.config.cache.maxSize
  if (limit === undefined) return ok('cache', `${s.bytes} bytes in ${s.blocks} blocks, no size limit (cache.maxSize)`, { bytes: s.bytes })
  if (s.bytes > limit) return { check: 'cache', status: 'warn', code: SwarmpackNodeErrorCode.CACHE_OVER_LIMIT, message: `the store holds ${s.bytes} bytes, over cache.maxSize ${limit}`, fix: 'run gc (fewer generations: generations.keep) or raise cache.maxSize; pinned (installed) packages are never evicted', details: { bytes: s.bytes, limit } }
  return ok('cache', `${s.bytes} of ${limit} bytes used`, { bytes: s.bytes, limit })
}

export async function runDoctor (host: OpsHost, meter: UpkeepMeter | undefined, options: DoctorOptions = {}): Promise<DoctorReport> {
  const t0 = Date.now()
  const o = { ...options, timeoutMs: options.timeoutMs ?? 5000 }
  const [boot, dht, mirrors] = await Promise.all([bootstrapChecks(host, o), dhtCheck(host, o), mirrorChecks(host, o)])
  const findings: Finding[] = [...listenChecks(host), ...boot, dht, ...mirrors.findings, ...await headChecks(host, mirrors.skews)]
  findings.push(await storeSample(host, options.sample ?? 64, options.signal))
  let rate = meter?.rate()
  if (options.upkeepMs !== undefined && meter !== undefined) rate = await meter.measure(options.upkeepMs, options.signal)
  findings.push(host.node.peer === undefined ? { check: 'upkeep', status: 'skip', message: 'no peer' } : upkeepFinding(rate))
  findings.push(cacheFinding(host))
  const report: DoctorReport = { at: host.now(), ms: Date.now() - t0, ok: findings.every(f => f.status !== 'fail'), findings }
  for (const f of findings) if (f.status === 'fail' || f.status === 'warn') host.log.write(f.status === 'fail' ? 'error' : 'warn', 'doctor', { check: f.check, code: f.code, message: f.message, fix: f.fix })
  return report
}
