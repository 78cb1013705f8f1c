/**
 * Swarms of peer processes in network namespaces (test/netns/peer.ts, one namespace each, every
 * uplink capped), and the distribution run shared by the tests and bench/swarm-distribution:
 * one seed, N downloaders that start fetching together, optional churn (serving peers SIGKILLed
 * mid-transfer, new peers joining). Everything is torn down in `finally`, also after a failure.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChildPeer, ROOT, writePackageDir, type NodeEvent } from '../helpers/swarm.js'
import { NetnsNetwork, nsCommand, type AddPeerOptions, type NetPeer } from './netns.js'

export const PEER_SCRIPT = join(ROOT, 'test/netns/peer.ts')
export const PEER_PORT = 4001

export interface NsChild {
  net: NetPeer
  child: ChildPeer
  /** `/ip4/<address>/tcp/4001/p2p/<id>` (`/ip6/…` for a peer with IPv6 only) */
  addr: string
  /** `/ip6/<address6>/tcp/4001/p2p/<id>`, for a peer with an IPv6 address */
  addr6?: string
}

/**
 * Starts peer.ts inside a peer namespace and waits for its ready line. It listens on port 4001
 * of 0.0.0.0, and of its IPv6 address if it has one (only that for an IPv6-only peer).
 */
export async function startNsPeer (net: NetPeer, name: string, dataDir: string, args: string[] = [], timeout = 240_000, env: Record<string, string> = {}): Promise<NsChild> {
  const listen = net.ipv6Only === true ? [] : ['--listen', `/ip4/0.0.0.0/tcp/${PEER_PORT}`]
  if (net.address6 !== undefined) listen.push('--listen', `/ip6/${net.address6}/tcp/${PEER_PORT}`)
  return startInNs(net, name, PEER_SCRIPT, ['--data-dir', dataDir, ...listen, ...args], timeout, env)
}

/** Starts a JSON-lines script (a ready line with its peer id, listening on PEER_PORT) inside a peer namespace. */
export async function startInNs (net: NetPeer, name: string, script: string, args: string[], timeout = 240_000, env: Record<string, string> = {}): Promise<NsChild> {
  const launcher = nsCommand(net.ns, 'env', [])
  const child = new ChildPeer(name, script, args, env, [launcher.cmd, ...launcher.args])
  try {
    await child.ready(timeout)
  } catch (err) {
    child.kill()
    throw err
  }
  const addr6 = net.address6 !== undefined ? `/ip6/${net.address6}/tcp/${PEER_PORT}/p2p/${child.peerId}` : undefined
  const addr = net.ipv6Only === true ? addr6! : `/ip4/${net.address}/tcp/${PEER_PORT}/p2p/${child.peerId}`
  return { net, child, addr, ...(addr6 !== undefined ? { addr6 } : {}) }
}

export interface DistributionOptions {
  downloaders: number
  /** Peers holding the package at the start (default 1). */
  seeds?: number
  /** Uplink cap of every peer, Mbit/s. */
  uplinkMbit: number
  packageBytes: number
  /**
   * How downloaders learn of each other: `dht` (the seed is dialled; other sources come from DHT
   * provider records, which peers publish as soon as they hold the package's root block, and
   * repeated lookups during the fetch), or `swarm` (every
   * downloader is connected to every other and asks them from the start, like a tracker's list).
   */
  discovery: 'dht' | 'swarm'
  /** Downloaders announce a package only once they hold all of it, and look providers up only when stuck (the behaviour before early announcements). */
  announceWhenComplete?: boolean
  /** Churn: SIGKILL this fraction of the serving downloaders once half of the bytes have arrived at them on average. */
  churn?: { killFraction: number, joiners: number }
  /** Bound on the whole transfer. */
  timeoutMs: number
  log?: (line: string) => void
}

export interface PeerOutcome {
  name: string
  /** ms from the common start until its `fetched` event, undefined if killed or failed. */
  ms?: number
  killed?: boolean
  joined?: boolean
  error?: string
  corruptBytes?: number
  verifiedBytes?: number
  /** Who served it what (its `fetched` event). */
  sources?: Array<{ peer: string, bytes: number, blocks: number }>
  sent: number
  received: number
  /** Bitswap messages it sent and received until its fetch completed (its `fetched` event). */
  messagesSent?: number
  messagesReceived?: number
  /** What its received Bitswap messages held (wants by type, presences, blocks). */
  entriesReceived?: Record<string, number>
}

export interface DistributionResult {
  options: DistributionOptions
  packageBytes: number
  blocks: number
  /** ms until the last surviving downloader completed. */
  allMs: number
  /** Bytes the seeds sent (all of them, sockets included). */
  seedSent: number
  /** Peer ids of the seeds (to tell them apart in `sources`). */
  seedIds: string[]
  peers: PeerOutcome[]
  /** Per peer, [ms since start, bytes received, bytes sent, process CPU ms] samples. */
  traffic: Record<string, Array<[number, number, number, number]>>
  /** CPU time all peers used from the common start until the last completion (from the samples nearest either end). */
  transferCpuMs: number
  startupMs: number
  load: number[]
}

/** The swarming lower bound S/u and the client-server time N·S/u, at the link's nominal rate. */
export function lowerBounds (bytes: number, mbit: number, downloaders: number): { swarmSec: number, clientServerSec: number } {
  const perSec = mbit * 1e6 / 8
  return { swarmSec: bytes / perSec, clientServerSec: downloaders * bytes / perSec }
}

/** A peer's last socket byte counts (its last `traffic` or `stopping` event). */
export function lastTraffic (c: ChildPeer): { sent: number, received: number } {
  for (let i = c.events.length - 1; i >= 0; i--) {
    const e = c.events[i]
    if (e.event === 'traffic' || e.event === 'stopping') return { sent: e.sent as number, received: e.received as number }
  }
  return { sent: 0, received: 0 }
}

/** A peer's `traffic` events as [ms since start, bytes received, bytes sent, process CPU ms]. */
export function trafficSamples (c: ChildPeer, start: number): Array<[number, number, number, number]> {
  return c.events.filter(e => e.event === 'traffic').map(e => [(e.t as number) - start, e.received as number, e.sent as number, e.cpuMs as number])
}

/**
 * The CPU all peers' processes used from the start until endMs: per peer, its last sample by
 * endMs minus its last before the start.
 */
export function transferCpu (traffic: Record<string, Array<[number, number, number, number]>>, endMs: number): number {
  const cpuAt = (samples: Array<[number, number, number, number]>, t: number): number => samples.filter(x => x[0] <= t).at(-1)?.[3] ?? 0
  return Object.values(traffic).reduce((sum, samples) => sum + cpuAt(samples, endMs) - cpuAt(samples, 0), 0)
}

export async function runDistribution (opts: DistributionOptions): Promise<DistributionResult> {
  const log = opts.log ?? (() => {})
  const { loadavg } = await import('node:os')
  const tmp = await mkdtemp(join(tmpdir(), 'spk-dist-'))
  const net = NetnsNetwork.create()
  const all: NsChild[] = []
  try {
    const content = join(tmp, 'content')
    await writePackageDir(content, opts.packageBytes, `dist-${opts.packageBytes}`)
    const link: AddPeerOptions = { uplinkMbit: opts.uplinkMbit }
    const t0 = Date.now()
    const seed = await startNsPeer(net.addPeer(link), 'seed', join(tmp, 'seed'), ['--seed', content])
    all.push(seed)
    const seeded = await seed.child.waitFor(e => e.event === 'seeded', 60_000, 'seeded')
    const root = seeded.root as string
    // more seeds of the same content (same root), joined through the first one
    const moreSeeds = await Promise.all(Array.from({ length: (opts.seeds ?? 1) - 1 }, async (_, i) => {
      const s = await startNsPeer(net.addPeer(link), `seed${i + 2}`, join(tmp, `seed${i + 2}`), ['--seed', content, '--bootstrap', seed.addr])
      await s.child.waitFor(e => e.event === 'seeded', 60_000, 'seeded')
      return s
    }))
    all.push(...moreSeeds)
    const seeds = [seed, ...moreSeeds]
    log(`seed ready (${Date.now() - t0} ms), root ${root}, ${seeded.blocks as number} blocks`)

    const startDownloader = async (name: string): Promise<NsChild> =>
      startNsPeer(net.addPeer(link), name, join(tmp, name), ['--bootstrap', seed.addr, ...(opts.announceWhenComplete === true ? ['--announce-when-complete'] : [])])
    const downloaders = await Promise.all(Array.from({ length: opts.downloaders }, async (_, i) => startDownloader(`d${i + 1}`)))
    all.push(...downloaders)
    if (opts.discovery === 'swarm') {
      // a full mesh, as a tracker's peer list would give
      await Promise.all(downloaders.map(async (d) => {
        for (const s of moreSeeds) await d.child.command(`dial ${s.addr}`, 'dialed', 60_000)
        for (const o of downloaders) {
          if (o !== d && o.child.peerId > d.child.peerId) await d.child.command(`dial ${o.addr}`, 'dialed', 60_000)
        }
      }))
    }
    const startupMs = Date.now() - t0
    log(`${downloaders.length} downloaders ready after ${startupMs} ms`)

    const outcomes = new Map<string, PeerOutcome>()
    const start = Date.now()
    const fetchCommand = (self: NsChild, peers: NsChild[]): string => {
      const ids = opts.discovery === 'swarm' ? [...seeds, ...peers].filter(p => p !== self).map(p => p.child.peerId) : [seed.child.peerId]
      return `fetch ${root} ${ids.join(' ')}`
    }
    const waitFetched = async (d: NsChild, joined = false): Promise<void> => {
      const o: PeerOutcome = { name: d.child.name, joined, sent: 0, received: 0 }
      outcomes.set(o.name, o)
      try {
        // polled rather than ChildPeer.waitFor, whose timer would outlive a killed peer by timeoutMs
        const e = await new Promise<NodeEvent>((resolve, reject) => {
          const deadline = Date.now() + opts.timeoutMs
          const timer = setInterval(() => {
            const ev = d.child.events.find(x => x.event === 'fetched' || (x.event === 'error' && x.command === 'fetch'))
            if (ev !== undefined || !d.child.running || Date.now() > deadline) clearInterval(timer)
            if (ev !== undefined) resolve(ev)
            else if (!d.child.running) resolve({ event: 'exited' })
            else if (Date.now() > deadline) reject(new Error(`${d.child.name}: no fetched event within ${opts.timeoutMs} ms`))
          }, 100)
        })
        if (e.event === 'fetched') {
          o.ms = (e.at as number) - start
          o.sources = e.sources as PeerOutcome['sources']
          o.messagesSent = e.messagesSent as number
          o.messagesReceived = e.messagesReceived as number
          o.entriesReceived = e.entriesReceived as Record<string, number>
        }
        else if (e.event === 'exited') o.killed = true
        else o.error = `${String(e.code)} ${String(e.message)}`
      } catch (err) {
        o.error = (err as Error).message.split('\n')[0]
      }
    }
    for (const d of downloaders) d.child.send(fetchCommand(d, downloaders))
    const waits = downloaders.map(async d => waitFetched(d))

    if (opts.churn !== undefined) {
      // kill once the downloaders hold about half of the package on average: they are serving then
      const want = opts.packageBytes * opts.downloaders / 2
      while (Date.now() - start < opts.timeoutMs) {
        const got = downloaders.reduce((s, d) => s + lastTraffic(d.child).received, 0)
        if (got >= want) break
        await new Promise(resolve => setTimeout(resolve, 200))
      }
      const victims = downloaders.slice(0, Math.round(downloaders.length * opts.churn.killFraction))
      for (const v of victims) { outcomes.get(v.child.name)!.killed = true; v.child.kill('SIGKILL') }
      log(`churn: killed ${victims.map(v => v.child.name).join(', ')} at ${Date.now() - start} ms`)
      const joiners = await Promise.all(Array.from({ length: opts.churn.joiners }, async (_, i) => startDownloader(`j${i + 1}`)))
      all.push(...joiners)
      const live = downloaders.filter(d => !victims.includes(d)).concat(joiners)
      for (const j of joiners) {
        if (opts.discovery === 'swarm') {
          for (const o of live) if (o !== j) await j.child.command(`dial ${o.addr}`, 'dialed', 60_000).catch(() => {})
        }
        j.child.send(fetchCommand(j, live))
        waits.push(waitFetched(j, true))
      }
      log(`churn: ${joiners.length} joined at ${Date.now() - start} ms`)
    }
    await Promise.all(waits)
    const done = [...outcomes.values()].filter(o => o.ms !== undefined)
    const allMs = Math.max(0, ...done.map(o => o.ms!))

    // every completed peer re-reads its copy and checks each block against its CID
    await Promise.all(all.filter(p => p !== seed && outcomes.get(p.child.name)?.ms !== undefined).map(async (p) => {
      const v = await p.child.command(`verify ${root}`, 'verified', 120_000)
      const o = outcomes.get(p.child.name)!
      o.corruptBytes = v.corrupt as number
      o.verifiedBytes = v.bytes as number
    }))
    const traffic: DistributionResult['traffic'] = {}
    for (const p of all) {
      const tr = lastTraffic(p.child)
      const o = outcomes.get(p.child.name)
      if (o !== undefined) { o.sent = tr.sent; o.received = tr.received }
      traffic[p.child.name] = trafficSamples(p.child, start)
    }
    const transferCpuMs = transferCpu(traffic, allMs)
    return {
      options: opts,
      packageBytes: seeded.bytes as number,
      blocks: seeded.blocks as number,
      allMs,
      seedSent: seeds.reduce((sum, s) => sum + lastTraffic(s.child).sent, 0),
      seedIds: seeds.map(s => s.child.peerId),
      peers: [...outcomes.values()],
      traffic,
      transferCpuMs,
      startupMs,
      load: loadavg()
    }
  } finally {
    await Promise.all(all.map(async p => p.child.stop(5000).catch(() => {})))
    net.remove()
    await rm(tmp, { recursive: true, force: true })
  }
}
