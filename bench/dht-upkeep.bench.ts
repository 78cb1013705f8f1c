/**
 * Idle DHT upkeep traffic: 20 peers on loopback form a swarm, each announces one package root,
 * then nobody does anything while every peer's socket bytes (sent + received, everything
 * included: noise, yamux, identify, ping, DHT) are counted over the window.
 *
 *   npm run bench -- dht-upkeep                        (5 minute window)
 *   SWARMPACK_UPKEEP_SECONDS=60 npm run bench -- dht-upkeep
 */
import '@swarmpack/core/polyfill'
import { rawCid } from '@swarmpack/core'
import { Announcer, createSwarmpackPeer, type SwarmpackPeer } from '@swarmpack/dht-provider'

const PEERS = Number(process.env.SWARMPACK_UPKEEP_PEERS ?? 20)
const WINDOW_S = Number(process.env.SWARMPACK_UPKEEP_SECONDS ?? 300)
const SETTLE_S = Number(process.env.SWARMPACK_UPKEEP_SETTLE ?? 20)
// connection liveness ping interval in ms ('off' disables it); default: the peer factory's
const PING = process.env.SWARMPACK_UPKEEP_PING
// SWARMPACK_UPKEEP_DEFAULTS=1 measures libp2p's and kad-dht's own defaults for comparison
const DEFAULTS = process.env.SWARMPACK_UPKEEP_DEFAULTS === '1'
  ? { connectionPingInterval: 10_000, keepAliveInterval: 30_000, querySelfInterval: 300_000, routingTableRefreshInterval: 300_000 }
  : {}
const pingConfig = { ...DEFAULTS, ...(PING === undefined ? {} : { connectionPingInterval: PING === 'off' ? false as const : Number(PING) }) }

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

const peers: SwarmpackPeer[] = []
const announcers: Announcer[] = []
try {
  const hub = await createSwarmpackPeer({ network: 'loopback', ...pingConfig })
  peers.push(hub)
  const boot = hub.multiaddrs().map(String)
  for (let i = 1; i < PEERS; i++) peers.push(await createSwarmpackPeer({ network: 'loopback', bootstrap: boot, ...pingConfig }))
  // poll until every routing table has filled, instead of sleeping a fixed time
  const want = Math.min(PEERS - 1, 10)
  await Promise.all(peers.map(async p => p.waitForRoutingTable(want, { timeout: 180_000, refreshEvery: 10_000 }).catch(() => p.routingTableSize())))
  for (const [i, p] of peers.entries()) {
    const a = new Announcer(p.dht)
    announcers.push(a)
    await a.announce(rawCid(new TextEncoder().encode(`package root ${i}`)))
  }
  console.log(`settings: ${DEFAULTS.connectionPingInterval !== undefined ? 'libp2p/kad-dht defaults (ping 10 s, yamux keep-alive 30 s, self-query and table refresh 5 min)' : 'swarmpack defaults (ping 15 min, yamux keep-alive 90 s, self-query 15 min, table refresh 30 min)'}`)
  console.log(`${PEERS} peers up, routing tables ${peers.map(p => p.routingTableSize()).join(' ')}; settling ${SETTLE_S} s`)
  await sleep(SETTLE_S * 1000)

  const start = peers.map(p => p.traffic!.totals())
  const t0 = Date.now()
  const samples: number[][] = peers.map(() => [])
  const slices = Math.max(1, Math.round(WINDOW_S / 30))
  for (let s = 0; s < slices; s++) {
    const before = peers.map(p => p.traffic!.totals())
    const ts = Date.now()
    await sleep((WINDOW_S * 1000) / slices)
    const dt = (Date.now() - ts) / 1000
    peers.forEach((p, i) => { const n = p.traffic!.totals(); samples[i].push((n.sent + n.received - before[i].sent - before[i].received) / dt) })
  }
  const seconds = (Date.now() - t0) / 1000
  const rates = peers.map((p, i) => { const n = p.traffic!.totals(); return (n.sent + n.received - start[i].sent - start[i].received) / seconds })
  const sliceMedians = samples.map(median)
  const slicesOfMedianPeer = samples[0].map((_, s) => median(samples.map(x => x[s] ?? 0)))
  console.log(`\nidle upkeep over ${seconds.toFixed(0)} s, ${PEERS}-peer swarm, bytes/s per peer (sent + received at the TCP socket):`)
  console.log(`  median peer  ${median(rates).toFixed(1)} B/s`)
  console.log(`  busiest peer ${Math.max(...rates).toFixed(1)} B/s   (bootstrap hub ${rates[0].toFixed(1)} B/s)`)
  console.log(`  quietest     ${Math.min(...rates).toFixed(1)} B/s`)
  console.log(`  30 s slices, median over peers: ${slicesOfMedianPeer.map(x => x.toFixed(0)).join(' ')} B/s`)
  void sliceMedians
  console.log(`  routing tables: ${peers.map(p => p.routingTableSize()).join(' ')}; connections: ${peers.map(p => p.libp2p.getConnections().length).join(' ')}`)
  console.log(`  target < 300 B/s (aim < 100): ${Math.max(...rates) < 300 ? 'met' : 'MISSED'} for every peer`)
} finally {
  await Promise.all(announcers.map(async a => a.stop()))
  await Promise.all(peers.map(async p => p.stop()))
}
process.exit(0)
