/**
 * Ask-to-have latency of a small package in a 20-peer swarm: a random peer packs a fresh 50 KB
 * package and announces it; another random peer then fetches it by root CID, provider lookup
 * through the DHT included. The 20 peers run in this one process (real TCP on loopback between
 * them); the machine's two cores are shared by all of them.
 *
 *   npm run bench -- dht-latency
 *   SWARMPACK_LATENCY_TRIALS=40 npm run bench -- dht-latency
 */
import '@swarmpack/core/polyfill'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pack, type CID } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer, type SwarmNode, type SwarmpackPeer } from '@swarmpack/dht-provider'
import { MemoryBlockstore } from 'blockstore-core/memory'

const PEERS = 20
const TRIALS = Number(process.env.SWARMPACK_LATENCY_TRIALS ?? 30)
const SIZE = 50 * 1000

const quantile = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] }

const dir = await mkdtemp(join(tmpdir(), 'swarmpack-latency-'))
const peers: SwarmpackPeer[] = []
const nodes: SwarmNode[] = []
try {
  const hub = await createSwarmpackPeer({ network: 'loopback' })
  peers.push(hub)
  for (let i = 1; i < PEERS; i++) peers.push(await createSwarmpackPeer({ network: 'loopback', bootstrap: hub.multiaddrs().map(String) }))
  await Promise.all(peers.map(async p => p.waitForRoutingTable(10, { timeout: 180_000, refreshEvery: 10_000 })))
  for (const p of peers) nodes.push(await createSwarmNode({ peer: p, blockstore: new MemoryBlockstore() }))
  console.log(`${PEERS} peers, routing tables ${peers.map(p => p.routingTableSize()).join(' ')}; ${TRIALS} trials of a ${SIZE / 1000} KB package\n`)

  const total: number[] = []
  const lookup: number[] = []
  const direct: number[] = []
  for (let t = 0; t < TRIALS; t++) {
    const a = Math.floor(Math.random() * PEERS)
    let b = Math.floor(Math.random() * (PEERS - 1))
    if (b >= a) b++
    const make = async (name: string): Promise<CID> => {
      const content = join(dir, name)
      await mkdir(content)
      await writeFile(join(content, 'index.js'), randomBytes(SIZE))
      return (await pack(content, { name, version: '1.0.0' }, { blockstore: nodes[a].blockstore as MemoryBlockstore })).root
    }
    const root = await make(`latency-${t}`)
    const announced = await nodes[a].announce(root)
    if (!announced) throw new Error(`announcement ${t} reached no peer`)
    const t0 = performance.now()
    let found = 0
    await nodes[b].fetch(root, {
      onProgress: (evt) => { if (evt.type === 'swarmpack:dht:providers' && found === 0) found = performance.now() - t0 }
    })
    total.push(performance.now() - t0)
    lookup.push(found)
    // baseline: the same fetch between the same two peers when the provider is already known
    const known = await make(`known-${t}`)
    const t1 = performance.now()
    await nodes[b].fetch(known, { peers: [peers[a].peerId] })
    direct.push(performance.now() - t1)
  }
  console.log('| 50 KB package, 20-peer swarm | median | p95 | max |')
  console.log('|---|---|---|---|')
  console.log(`| ask to have (lookup + fetch) | ${quantile(total, 0.5).toFixed(0)} ms | ${quantile(total, 0.95).toFixed(0)} ms | ${Math.max(...total).toFixed(0)} ms |`)
  console.log(`| of which: first provider found | ${quantile(lookup, 0.5).toFixed(0)} ms | ${quantile(lookup, 0.95).toFixed(0)} ms | ${Math.max(...lookup).toFixed(0)} ms |`)
  console.log(`| baseline: same peers, provider already known | ${quantile(direct, 0.5).toFixed(0)} ms | ${quantile(direct, 0.95).toFixed(0)} ms | ${Math.max(...direct).toFixed(0)} ms |`)
  console.log(`\nmedian ask-to-have / known-provider fetch: ${(quantile(total, 0.5) / quantile(direct, 0.5)).toFixed(2)}x`)
} finally {
  await Promise.all(nodes.map(async n => n.stop()))
  await Promise.all(peers.map(async p => p.stop()))
  await rm(dir, { recursive: true, force: true })
}
process.exit(0)
