/**
 * Benchmark child process (bench/dht-transfer.bench.ts). One process plays one peer and runs,
 * side by side on the same machine state:
 *   - a swarmpack peer (createSwarmpackPeer + SwarmNode over Bitswap),
 *   - a raw libp2p stream protocol sending a package's block bytes, held in memory, back to back
 *     (baseline a: no store on either side),
 *   - a Helia 7 node with its own bitswap holding the same blocks (baseline b); the fetching Helia
 *     writes into its own `blockstore-fs` (as a Helia user runs it) or into memory.
 *
 *   bench-peer.ts --role provider --store <dir with a packed package> --root <cid>
 *   bench-peer.ts --role fetcher
 *
 * The fetcher takes JSON commands on stdin ({cmd:'raw'|'ours'|'helia', sink:'memory'|'store', ...})
 * and answers each with one JSON line: {cmd, bytes, blocks, ms, sources}. `sink: 'store'` fetches
 * into a fresh on-disk store (FsBlockstore, durable, for swarmpack; blockstore-fs for Helia).
 */
import '@swarmpack/core/polyfill'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { FsBlockstore, blockLinks, parseCid, type CID } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer, drained, type SwarmNode } from '@swarmpack/dht-provider'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { FsBlockstore as HeliaFsBlockstore } from 'blockstore-fs'
import type { Blockstore } from 'interface-blockstore'
import { createHeliaLight } from 'helia'
import type { Stream } from '@libp2p/interface'

const RAW_PROTOCOL = '/swarmpack-bench/raw/1.0.0'
const { values } = parseArgs({ options: { role: { type: 'string' }, store: { type: 'string' }, root: { type: 'string' }, bootstrap: { type: 'string', multiple: true }, json: { type: 'boolean' } } })
// SWARMPACK_BENCH_SESSION='{"maxWantsPerPeer":64}' tries other session settings
const sessionTuning = process.env.SWARMPACK_BENCH_SESSION !== undefined ? JSON.parse(process.env.SWARMPACK_BENCH_SESSION) as Record<string, number> : undefined
const out = (o: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(o) + '\n') }

async function readAll (store: { get: (cid: CID) => AsyncIterable<Uint8Array> }, cid: CID): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const c of store.get(cid)) chunks.push(c)
  return chunks.length === 1 ? chunks[0] : new Uint8Array(Buffer.concat(chunks))
}

/** Every CID the root reaches, root first (breadth first). */
async function dagCids (get: (cid: CID) => Promise<Uint8Array>, root: CID): Promise<CID[]> {
  const order: CID[] = [root]
  for (let i = 0; i < order.length; i++) order.push(...blockLinks(order[i], await get(order[i])))
  return order
}

async function createHelia (blockstore: Blockstore): Promise<any> {
  const helia = withBitswap(withLibp2pLight(createHeliaLight({ blockstore }), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] },
    services: { identify: identify() }
  }))
  await helia.start()
  return helia
}

const peer = await createSwarmpackPeer({ network: 'loopback', bootstrap: values.bootstrap ?? [] })

if (values.role === 'provider') {
  const store = await FsBlockstore.open(values.store!, { fsync: false, lock: false })
  const root = parseCid(values.root!)
  const node = await createSwarmNode({ peer, blockstore: store })
  const order = await dagCids(async c => store.getBytes(c), root)
  // raw baseline: the same block bytes, held in memory, back to back on one stream
  const inMemory = await Promise.all(order.map(async c => await store.getBytes(c)))
  await peer.libp2p.handle(RAW_PROTOCOL, async (stream: Stream) => {
    try {
      for (const bytes of inMemory) {
        if (!stream.send(bytes)) await drained(stream)
      }
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  // Helia baseline: a Helia node holding the same blocks in memory
  const heliaStore = new MemoryBlockstore()
  for (let i = 0; i < order.length; i++) await heliaStore.put(order[i], inMemory[i])
  const helia = await createHelia(heliaStore)
  out({ event: 'ready', peerId: peer.peerId.toString(), multiaddrs: peer.multiaddrs().map(String), helia: helia.libp2p.getMultiaddrs().map(String), blocks: order.length })
  const stop = async (): Promise<void> => {
    const s = node.bitswap.stats()
    out({ event: 'stopping', bytesSent: s.bytesSent, blocksSent: s.blocksSent })
    await helia.stop(); await node.stop(); await peer.stop(); await store.close(); process.exit(0)
  }
  process.on('SIGTERM', () => { void stop() })
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'stats') { const s = node.bitswap.stats(); out({ event: 'stats', bytesSent: s.bytesSent, blocksSent: s.blocksSent }) }
  })
} else {
  let node: SwarmNode | undefined
  out({ event: 'ready', peerId: peer.peerId.toString(), multiaddrs: peer.multiaddrs().map(String) })
  let scratch: string | undefined
  /** A fresh, empty directory for one run's on-disk store (the previous one is removed). */
  const freshDir = async (): Promise<string> => {
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true })
    scratch = await mkdtemp(join(tmpdir(), 'swarmpack-bench-fetch-'))
    return scratch
  }
  let ourStore: FsBlockstore | undefined
  const run = async (msg: { cmd: string, root: string, peers: string[], helia?: string, sink?: string }): Promise<Record<string, unknown>> => {
    const root = parseCid(msg.root)
    const toDisk = msg.sink === 'store'
    if (msg.cmd === 'raw') {
      const stream = await peer.libp2p.dialProtocol(multiaddr(msg.peers[0]), RAW_PROTOCOL)
      const t0 = performance.now()
      let bytes = 0
      for await (const chunk of stream) bytes += chunk.byteLength
      return { bytes, ms: performance.now() - t0 }
    }
    if (msg.cmd === 'ours') {
      // a fresh, empty store and node per run, so nothing is served from a previous run
      await node?.stop()
      await ourStore?.close()
      ourStore = toDisk ? await FsBlockstore.open(await freshDir()) : undefined
      node = await createSwarmNode({ peer, blockstore: ourStore ?? new MemoryBlockstore(), mode: 'consume', ...(sessionTuning !== undefined ? { session: sessionTuning } : {}) })
      const ids = await Promise.all(msg.peers.map(async a => (await peer.libp2p.dial(multiaddr(a))).remotePeer))
      const t0 = performance.now()
      const r = await node.fetch(root, { peers: ids })
      return { bytes: r.bytes, blocks: r.blocks, ms: performance.now() - t0, sources: r.sources }
    }
    if (msg.cmd === 'helia') {
      let blockstore: Blockstore = new MemoryBlockstore()
      if (toDisk) {
        const fs = new HeliaFsBlockstore(await freshDir())
        await fs.open()
        blockstore = fs
      }
      const helia = await createHelia(blockstore)
      try {
        await helia.libp2p.dial(multiaddr(msg.helia!))
        const t0 = performance.now()
        let bytes = 0
        let blocks = 0
        let level: CID[] = [root]
        while (level.length > 0) {
          const next: CID[] = []
          // many wants at once, as Helia's own DAG walkers do
          const queue = [...level]
          await Promise.all(Array.from({ length: Math.min(64, queue.length) }, async () => {
            for (let cid = queue.shift(); cid !== undefined; cid = queue.shift()) {
              const b = await readAll(helia.blockstore, cid)
              bytes += b.byteLength
              blocks++
              next.push(...blockLinks(cid, b))
            }
          }))
          level = next
        }
        return { bytes, blocks, ms: performance.now() - t0 }
      } finally {
        await helia.stop()
      }
    }
    throw new Error(`unknown command ${msg.cmd}`)
  }
  let chain = Promise.resolve()
  createInterface({ input: process.stdin }).on('line', (line) => {
    chain = chain.then(async () => {
      const msg = JSON.parse(line) as { cmd: string, root: string, peers: string[], helia?: string, sink?: string }
      try {
        out({ event: 'result', cmd: msg.cmd, ...await run(msg) })
      } catch (err) {
        out({ event: 'result', cmd: msg.cmd, error: (err as Error).message })
      }
    })
  })
  process.on('SIGTERM', () => {
    void (async () => {
      await node?.stop(); await ourStore?.close(); await peer.stop()
      if (scratch !== undefined) await rm(scratch, { recursive: true, force: true })
      process.exit(0)
    })()
  })
}
