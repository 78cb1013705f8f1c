/**
 * Distribution in a bandwidth-shaped swarm (network namespaces, every uplink capped with tbf):
 *
 * - fan-in: one downloader fetching a package from 4 capped seeds vs from 1 (target ≥ 3x faster);
 * - distribution: 1 seed and N downloaders (default 20) starting together, a package of S bytes
 *   (default 20 MiB), uplinks u (default 10 Mbit/s). Time until all have it vs the swarming lower
 *   bound S/u and the client-server time N·S/u; the seed's upload in multiples of the package
 *   (targets ≤ 2x the bound, ≤ 3x the package);
 * - raw: the baseline from memory for the distribution, in the same topology: the optimal swarming
 *   schedule over plain libp2p streams (TCP, noise, yamux as our peer has them), the seed streaming
 *   stripe i of an in-memory package to downloader i, which forwards it to all the others
 *   (test/netns/raw-striped.ts). Time vs S/u, the peers' CPU; with dist in the same invocation,
 *   the ratios distribution / raw for time and CPU per MB delivered;
 * - churn: the same swarm with 30 % of the downloaders SIGKILLed once they hold half of the
 *   package on average and new peers joining; slowdown vs no churn, corrupt bytes (must be 0).
 *
 * Root and the `ip` command are needed (network namespaces); otherwise it says so and exits 0.
 * Writes docs/benchmarks/swarm-*.svg and .tmp/swarm-distribution.json.
 *
 *   flock /work/coord/bench.lock npm run bench -- swarm-distribution
 *   SWARM_RUNS=fanin,raw,dist,churn SWARM_N=20 SWARM_MIB=20 SWARM_MBIT=10 SWARM_DISCOVERY=swarm|dht
 *   SWARM_RUNS=dht-late,dist SWARM_DISCOVERY=dht   adds the baseline for DHT discovery: downloaders
 *                                                   announce only once complete (the old behaviour)
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { netnsUnavailable } from '../test/netns/netns.js'
import { runRawStriped, type RawStripedResult } from '../test/netns/raw-striped.js'
import { lowerBounds, runDistribution, type DistributionOptions, type DistributionResult } from '../test/netns/swarm.js'
import { ROOT } from '../test/helpers/swarm.js'
import { distributionSvg } from './swarm-plot.js'

const why = netnsUnavailable()
if (why !== undefined) {
  console.log(`skipped: ${why}`)
  process.exit(0)
}
const runs = (process.env.SWARM_RUNS ?? 'fanin,raw,dist,churn').split(',')
const N = Number(process.env.SWARM_N ?? 20)
const S = Number(process.env.SWARM_MIB ?? 20) * 2 ** 20
const U = Number(process.env.SWARM_MBIT ?? 10)
const discovery = (process.env.SWARM_DISCOVERY ?? 'swarm') as DistributionOptions['discovery']
const log = (s: string): void => { console.log(`  ${s}`) }
const sec = (ms: number): string => (ms / 1000).toFixed(1)
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const results: Record<string, DistributionResult> = {}
let raw: RawStripedResult | undefined
/** CPU-ms per MB (10^6 bytes) delivered to the downloaders that completed. */
const cpuPerMB = (cpuMs: number, delivered: number): number => cpuMs / (delivered / 1e6)
console.log(`load average at start: ${loadavg().map(x => x.toFixed(1)).join(' ')}`)

async function run (name: string, o: DistributionOptions): Promise<DistributionResult> {
  console.log(`\n${name}: ${o.seeds ?? 1} seed(s), ${o.downloaders} downloader(s), ${(o.packageBytes / 2 ** 20).toFixed(0)} MiB, uplinks ${o.uplinkMbit} Mbit/s, discovery ${o.discovery}${o.churn !== undefined ? `, churn kill ${o.churn.killFraction * 100} % + ${o.churn.joiners} join` : ''}`)
  const r = await runDistribution({ ...o, log })
  results[name] = r
  const corrupt = r.peers.reduce((s, p) => s + (p.corruptBytes ?? 0), 0)
  const failed = r.peers.filter(p => p.ms === undefined && p.killed !== true)
  console.log(`  all done in ${sec(r.allMs)} s; seed(s) sent ${(r.seedSent / r.packageBytes).toFixed(2)}x the package; corrupt bytes ${corrupt}; failed ${failed.map(p => `${p.name}: ${p.error ?? '?'}`).join(', ') || 'none'}; load ${r.load.map(x => x.toFixed(1)).join(' ')}`)
  const delivered = r.peers.reduce((s, p) => s + (p.ms !== undefined ? r.packageBytes : 0), 0)
  const msgs = r.peers.filter(p => p.messagesReceived !== undefined)
  console.log(`  peers' CPU from the start to the last completion: ${sec(r.transferCpuMs)} CPU-s (${(r.transferCpuMs / 1000 / (r.allMs / 1000)).toFixed(2)} cores; ${(r.transferCpuMs / (delivered / 1e6)).toFixed(1)} CPU-ms per MB delivered); Bitswap messages per downloader: ${msgs.length > 0 ? `median received ${median(msgs.map(p => p.messagesReceived!))}, sent ${median(msgs.map(p => p.messagesSent!))}` : 'n/a'}`)
  if (msgs.length > 0 && msgs[0].entriesReceived !== undefined) console.log(`  entries received per downloader (median): ${Object.keys(msgs[0].entriesReceived).map(k => `${k} ${median(msgs.map(p => p.entriesReceived?.[k] ?? 0))}`).join(', ')}`)
  console.log(`  completion (s): ${r.peers.map(p => `${p.name}=${p.ms !== undefined ? sec(p.ms) : p.killed === true ? 'killed' : 'failed'}`).join(' ')}`)
  return r
}

if (runs.includes('fanin')) {
  const base = { downloaders: 1, uplinkMbit: U, packageBytes: S / 2, discovery: 'swarm' as const, timeoutMs: 300_000 }
  const one = await run('fan-in 1 seed', { ...base, seeds: 1 })
  const four = await run('fan-in 4 seeds', { ...base, seeds: 4 })
  console.log(`\nfan-in: 4 capped seeds ${sec(four.allMs)} s vs 1 ${sec(one.allMs)} s: ${(one.allMs / four.allMs).toFixed(2)}x faster (target ≥ 3x)`)
}
if (runs.includes('raw')) {
  console.log(`\nraw striped baseline: 1 seed, ${N} downloader(s), ${(S / 2 ** 20).toFixed(0)} MiB in memory, uplinks ${U} Mbit/s, plain libp2p streams (TCP + noise + yamux)`)
  const r = raw = await runRawStriped({ downloaders: N, uplinkMbit: U, packageBytes: S, timeoutMs: 600_000, log })
  const lb = lowerBounds(S, U, N)
  const failed = r.peers.filter(p => p.ms === undefined)
  const delivered = r.peers.reduce((sum, p) => sum + (p.ms !== undefined ? p.payloadReceived : 0), 0)
  console.log(`  completion (s): ${r.peers.map(p => `${p.name}=${p.ms !== undefined ? sec(p.ms) : 'failed'}`).join(' ')}; failed ${failed.map(p => `${p.name}: ${p.error ?? '?'}`).join(', ') || 'none'}`)
  const stripes = r.peers.filter(p => p.stripeMs !== undefined).map(p => p.stripeMs!)
  if (stripes.length > 0) console.log(`  each downloader's stripe complete from the seed after ${sec(Math.min(...stripes))}-${sec(Math.max(...stripes))} s (median ${sec(median(stripes))} s)`)
  console.log(`  seed sent ${(r.seedSent / S).toFixed(2)}x the package; downloaders sent ${(median(r.peers.map(p => p.sent)) / S).toFixed(2)}x each (median, sockets); load ${r.load.map(x => x.toFixed(1)).join(' ')}`)
  console.log(`\nraw striped baseline (libp2p streams from memory): all ${N} in ${sec(r.allMs)} s = ${(r.allMs / 1000 / lb.swarmSec).toFixed(2)}x S/u; CPU ${sec(r.transferCpuMs)} CPU-s (${cpuPerMB(r.transferCpuMs, delivered).toFixed(1)} CPU-ms per MB delivered)`)
}
if (runs.includes('dist')) {
  const r = await run('distribution', { downloaders: N, uplinkMbit: U, packageBytes: S, discovery, timeoutMs: 900_000 })
  const lb = lowerBounds(r.packageBytes, U, N)
  console.log(`\ndistribution: all ${N} in ${sec(r.allMs)} s = ${(r.allMs / 1000 / lb.swarmSec).toFixed(2)}x the lower bound S/u ${lb.swarmSec.toFixed(1)} s (target ≤ 2x); client-server N·S/u ${lb.clientServerSec.toFixed(0)} s; seed upload ${(r.seedSent / r.packageBytes).toFixed(2)}x (target ≤ 3x)`)
  if (raw !== undefined) {
    const delivered = (x: { peers: Array<{ ms?: number }> }, bytes: number): number => x.peers.filter(p => p.ms !== undefined).length * bytes
    const ratio = cpuPerMB(r.transferCpuMs, delivered(r, r.packageBytes)) / cpuPerMB(raw.transferCpuMs, delivered(raw, raw.packageBytes))
    console.log(`distribution / raw baseline: time ${(r.allMs / raw.allMs).toFixed(2)}x (${sec(r.allMs)} s vs ${sec(raw.allMs)} s), CPU per MB delivered ${ratio.toFixed(2)}x`)
  }
  await mkdir(join(ROOT, 'docs/benchmarks'), { recursive: true })
  await writeFile(join(ROOT, `docs/benchmarks/swarm-distribution-${discovery}.svg`), distributionSvg(r, `1 seed + ${N}, ${(S / 2 ** 20).toFixed(0)} MiB, ${U} Mbit/s uplinks (${discovery})`))
}
if (runs.includes('dht-late')) {
  const r = await run('distribution, announced only when complete', { downloaders: N, uplinkMbit: U, packageBytes: S, discovery: 'dht', announceWhenComplete: true, timeoutMs: 900_000 })
  const lb = lowerBounds(r.packageBytes, U, N)
  console.log(`\ndistribution (DHT discovery, announced only when complete): all ${N} in ${sec(r.allMs)} s = ${(r.allMs / 1000 / lb.swarmSec).toFixed(2)}x S/u; seed upload ${(r.seedSent / r.packageBytes).toFixed(2)}x`)
}
if (runs.includes('churn')) {
  const r = await run('churn', { downloaders: N, uplinkMbit: U, packageBytes: S, discovery, timeoutMs: 900_000, churn: { killFraction: 0.3, joiners: Math.max(1, Math.round(N * 0.15)) } })
  const base = results.distribution
  const survivors = r.peers.filter(p => p.killed !== true)
  const ok = survivors.filter(p => p.ms !== undefined && p.corruptBytes === 0)
  console.log(`\nchurn: ${ok.length}/${survivors.length} surviving downloaders complete with 0 corrupt bytes; all in ${sec(r.allMs)} s${base !== undefined ? ` vs ${sec(base.allMs)} s without churn: ${(r.allMs / base.allMs).toFixed(2)}x` : ''}`)
  await writeFile(join(ROOT, `docs/benchmarks/swarm-churn-${discovery}.svg`), distributionSvg(r, `churn: 30 % killed, ${r.peers.filter(p => p.joined === true).length} joined (${discovery})`))
}
await mkdir(join(ROOT, '.tmp'), { recursive: true })
await writeFile(join(ROOT, '.tmp/swarm-distribution.json'), JSON.stringify({ ...results, ...(raw !== undefined ? { raw } : {}) }, null, 1))
console.log(`\nload average at end: ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
