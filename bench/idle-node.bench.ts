/**
 * Idle DHT upkeep through the node (issue #12): N swarmpack nodes (createSwarmpack, sharing
 * `share`, loopback) form a swarm; each installs one package from a mirror directory and so
 * announces its pinned roots; then nobody does anything while every node's socket bytes (sent +
 * received, everything included: noise, yamux, identify, ping, DHT, Bitswap) are counted. The
 * same figure is then read back from each node's `doctor()` (its upkeep meter samples the same
 * counter), which is what an operator sees. Compare bench/dht-upkeep.bench.ts (bare peers).
 *
 *   flock /work/coord/bench.lock npm run bench -- idle-node                  (10 nodes, 120 s window)
 *   SWARMPACK_IDLE_NODES=20 SWARMPACK_IDLE_SECONDS=300 npm run bench -- idle-node
 */
import '@swarmpack/core/polyfill'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSwarmpack, type Swarmpack } from 'swarmpack'
import { TestPublisher, seededBytes } from '../packages/swarmpack/test/helpers/publisher.js'

const NODES = Number(process.env.SWARMPACK_IDLE_NODES ?? 10)
const WINDOW_S = Number(process.env.SWARMPACK_IDLE_SECONDS ?? 120)
const SETTLE_S = Number(process.env.SWARMPACK_IDLE_SETTLE ?? 20)
const SLICE_S = Math.min(30, WINDOW_S)

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const load = (): string => loadavg().map(x => x.toFixed(1)).join(' ')

const dir = await mkdtemp(join(tmpdir(), 'swarmpack-idle-node-'))
const nodes: Swarmpack[] = []
const pub = await TestPublisher.create(join(dir, 'publisher'))
const t0 = Date.now()
console.log(`load average at start: ${load()}`)
try {
  await pub.publish({ name: 'idle-pkg', version: '1.0.0', files: { 'index.js': 'export {}\n', 'data.bin': seededBytes(64 * 1024, 1) }, entry: 'index.js' })
  await pub.publishIndex()
  const config = (bootstrap: string[]): Record<string, unknown> => ({
    ...pub.trustConfig(),
    modules: { 'idle-pkg': '^1.0.0' },
    sharing: 'share',
    network: { mode: 'loopback' },
    sources: { bootstrap, directories: [{ path: pub.mirrorDir }], policy: 'mirrors-only' },
    // nothing scheduled during the window but the DHT's own upkeep
    updates: { policy: 'off' },
    scrub: { intervalMs: 0 }
  })
  const start = async (i: number, bootstrap: string[]): Promise<Swarmpack> => {
    const node = await createSwarmpack({ dataDir: join(dir, `node-${i}`), config: config(bootstrap) as any, upkeepSampleMs: SLICE_S * 1000 })
    nodes.push(node)
    await node.apply()
    return node
  }
  const hub = await start(0, [])
  const boot = (hub.peer?.multiaddrs() ?? []).map(String)
  for (let i = 1; i < NODES; i++) await start(i, boot)
  const want = Math.min(NODES - 1, 8)
  await Promise.all(nodes.map(async n => n.peer?.waitForRoutingTable(want, { timeout: 180_000, refreshEvery: 10_000 }).catch(() => n.peer?.routingTableSize())))
  const announced = await Promise.all(nodes.map(async n => n.announceInstalled()))
  console.log(`${NODES} nodes up and installed (${((Date.now() - t0) / 1000).toFixed(0)} s), routing tables ${nodes.map(n => n.peer?.routingTableSize()).join(' ')}, roots announced ${announced.join(' ')}; settling ${SETTLE_S} s`)
  await sleep(SETTLE_S * 1000)

  const total = (n: Swarmpack): number => { const t = n.peer?.traffic?.totals(); return (t?.sent ?? 0) + (t?.received ?? 0) }
  const startBytes = nodes.map(total)
  const w0 = Date.now()
  const slices: number[][] = nodes.map(() => [])
  for (let s = 0; s < Math.max(1, Math.round(WINDOW_S / SLICE_S)); s++) {
    const before = nodes.map(total)
    const ts = Date.now()
    await sleep(SLICE_S * 1000)
    const dt = (Date.now() - ts) / 1000
    nodes.forEach((n, i) => slices[i].push((total(n) - before[i]) / dt))
  }
  const seconds = (Date.now() - w0) / 1000
  const rates = nodes.map((n, i) => (total(n) - startBytes[i]) / seconds)
  const doctors = await Promise.all(nodes.map(async n => (await n.doctor({ sample: 4, timeoutMs: 5000 })).findings.find(f => f.check === 'upkeep')))
  const reported = doctors.map(f => Number(f?.details?.bytesPerSec ?? NaN))
  console.log(`\nidle upkeep through the node over ${seconds.toFixed(0)} s, ${NODES}-node swarm, bytes/s per node (sent + received at the TCP socket):`)
  console.log('| figure | B/s |')
  console.log('|---|---|')
  console.log(`| median node | ${median(rates).toFixed(1)} |`)
  console.log(`| busiest node | ${Math.max(...rates).toFixed(1)} (bootstrap hub ${rates[0].toFixed(1)}) |`)
  console.log(`| quietest node | ${Math.min(...rates).toFixed(1)} |`)
  console.log(`| ${SLICE_S} s slices, median over nodes | ${slices[0].map((_, s) => median(slices.map(x => x[s])).toFixed(0)).join(' ')} |`)
  console.log(`| doctor() upkeep, median node | ${median(reported).toFixed(1)} (statuses: ${[...new Set(doctors.map(d => d?.status))].join(', ')}) |`)
  console.log(`connections: ${nodes.map(n => n.peer?.libp2p.getConnections().length).join(' ')}`)
  console.log(`target < 100 B/s (aim < 50): ${Math.max(...rates) < 100 ? 'met' : 'MISSED'} for every node; median ${median(rates) < 50 ? 'under' : 'over'} 50`)
  console.log(`load average at end: ${load()}; ran ${((Date.now() - t0) / 1000).toFixed(0)} s in all`)
} finally {
  for (const n of nodes) await n.stop().catch(() => {})
  await pub.close()
  await rm(dir, { recursive: true, force: true })
}
process.exit(0)
