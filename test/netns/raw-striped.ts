/**
 * The from-memory baseline of the distribution run: the same topology as runDistribution (one
 * seed, N downloaders, each a process in its own namespace with a capped uplink, a full mesh of
 * connections made before the start), but instead of swarmpack's Bitswap, test/netns/raw-peer.ts
 * runs the optimal swarming schedule over plain libp2p streams: the seed streams stripe i of the
 * in-memory package to downloader i, which forwards it to all the others as it arrives. Every
 * uplink then carries about S bytes, so ideally all finish after S/u. Torn down in `finally`.
 */
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { ROOT, type NodeEvent } from '../helpers/swarm.js'
import { NetnsNetwork, type AddPeerOptions } from './netns.js'
import { PEER_PORT, startInNs, trafficSamples, transferCpu, type NsChild } from './swarm.js'

export const RAW_PEER_SCRIPT = join(ROOT, 'test/netns/raw-peer.ts')

export interface RawStripedOptions {
  downloaders: number
  /** Uplink cap of every peer, Mbit/s. */
  uplinkMbit: number
  packageBytes: number
  /** Bytes per write of the seed (default 256 KiB). */
  chunkBytes?: number
  /** Bound on the transfer. */
  timeoutMs: number
  log?: (line: string) => void
}

export interface RawPeerOutcome {
  name: string
  /** ms from the common start until it held S bytes; undefined if it failed. */
  ms?: number
  error?: string
  /** Payload bytes it received (its stripe from the seed plus the others' forwards). */
  payloadReceived: number
  /** Of those, from the seed (its own stripe). */
  fromSeed: number
  /** ms from the start until its whole stripe had arrived from the seed. */
  stripeMs?: number
  /** Socket bytes (everything: noise, yamux). */
  sent: number
  received: number
}

export interface RawStripedResult {
  options: RawStripedOptions
  packageBytes: number
  /** ms until the last downloader held S bytes. */
  allMs: number
  /** Socket bytes the seed sent. */
  seedSent: number
  peers: RawPeerOutcome[]
  /** Per peer (seed included), [ms since start, bytes received, bytes sent, process CPU ms] samples. */
  traffic: Record<string, Array<[number, number, number, number]>>
  /** CPU time all peers used from the common start until the last completion. */
  transferCpuMs: number
  startupMs: number
  load: number[]
}

export async function runRawStriped (opts: RawStripedOptions): Promise<RawStripedResult> {
  const log = opts.log ?? (() => {})
  const net = NetnsNetwork.create()
  const all: NsChild[] = []
  const S = opts.packageBytes
  try {
    const link: AddPeerOptions = { uplinkMbit: opts.uplinkMbit }
    const t0 = Date.now()
    const args = ['--listen', `/ip4/0.0.0.0/tcp/${PEER_PORT}`, ...(opts.chunkBytes !== undefined ? ['--chunk-bytes', String(opts.chunkBytes)] : [])]
    // each one kept as it starts, so a failed start still tears the others down
    const start = async (name: string): Promise<NsChild> => { const p = await startInNs(net.addPeer(link), name, RAW_PEER_SCRIPT, args); all.push(p); return p }
    const [seed, ...downloaders] = await Promise.all([start('seed'), ...Array.from({ length: opts.downloaders }, async (_, i) => start(`d${i + 1}`))])
    // the mesh, each pair dialled once (by the lower peer id), as runDistribution's swarm discovery makes it
    await Promise.all(downloaders.map(async (d) => {
      for (const o of downloaders) {
        if (o !== d && o.child.peerId > d.child.peerId) await d.child.command(`dial ${o.addr}`, 'dialed', 60_000)
      }
    }))
    // streams opened before the start: the downloaders' forward streams, then the seed's stripe streams
    await Promise.all(downloaders.map(async d => d.child.command(`expect ${S} ${seed.child.peerId} ${downloaders.filter(o => o !== d).map(o => o.addr).join(' ')}`, 'prepared', 120_000)))
    await seed.child.command(`seed ${S} ${downloaders.map(d => d.addr).join(' ')}`, 'prepared', 120_000)
    // a CPU sample from every peer before the start, so the transfer's CPU excludes start-up (the first comes report-ms after ready)
    await Promise.all(all.map(async p => p.child.next(e => e.event === 'traffic', 30_000, 'traffic sample')))
    const startupMs = Date.now() - t0
    log(`seed and ${downloaders.length} downloaders ready and connected after ${startupMs} ms`)

    const started = Date.now()
    seed.child.send('go')
    const outcomes = await Promise.all(downloaders.map(async (d): Promise<RawPeerOutcome> => {
      const o: RawPeerOutcome = { name: d.child.name, payloadReceived: 0, fromSeed: 0, sent: 0, received: 0 }
      try {
        const e: NodeEvent = await d.child.waitFor(x => x.event === 'done' || x.event === 'error', opts.timeoutMs, `all ${S} bytes`)
        if (e.event === 'done') {
          o.ms = (e.at as number) - started
          o.payloadReceived = e.bytes as number
          o.fromSeed = e.fromSeed as number
        } else {
          o.error = `${String(e.code)} ${String(e.message)}`
        }
      } catch (err) {
        o.error = (err as Error).message.split('\n')[0]
      }
      return o
    }))
    const sent = await seed.child.waitFor(e => e.event === 'sent' || (e.event === 'error' && e.command === 'go'), 60_000, 'sent')
    if (sent.event === 'error') throw new Error(`seed: go: ${String(sent.message)}`)
    const allMs = Math.max(0, ...outcomes.map(o => o.ms ?? 0))
    for (const o of outcomes) {
      const e = downloaders.find(d => d.child.name === o.name)!.child.events.find(x => x.event === 'stripe')
      if (e !== undefined) o.stripeMs = (e.at as number) - started
    }

    const traffic: RawStripedResult['traffic'] = {}
    for (const p of all) traffic[p.child.name] = trafficSamples(p.child, started)
    // socket totals now that every byte has arrived (the traffic samples lag by up to report-ms)
    const totals = await Promise.all(all.map(async p => p.child.command('totals', 'totals', 30_000)))
    for (const o of outcomes) {
      const t = totals[all.findIndex(p => p.child.name === o.name)]
      o.sent = t.sent as number
      o.received = t.received as number
    }
    return {
      options: opts,
      packageBytes: S,
      allMs,
      seedSent: totals[all.indexOf(seed)].sent as number,
      peers: outcomes,
      traffic,
      transferCpuMs: transferCpu(traffic, allMs),
      startupMs,
      load: loadavg()
    }
  } finally {
    await Promise.all(all.map(async p => p.child.stop(5000).catch(() => {})))
    net.remove()
  }
}
