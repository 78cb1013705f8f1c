/**
 * Helpers for demos and scripts: a swarmpack peer with its on-disk store and sharing node in one
 * call, and a small local swarm on loopback (peers joining through the first one).
 *
 *   const swarm = await startLocalSwarm(4, '/tmp/demo')
 *   const { root } = await swarm[0].add('./my-package', 'my-package', '1.0.0')
 *   const result = await swarm[2].node.fetch(root, { onProgress })   // result.sources: who served it
 *   await stopSwarm(swarm)
 */
import '@swarmpack/core/polyfill'
import { join, resolve } from 'node:path'
import { FsBlockstore, pack, type CID } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer, type SharingMode, type SwarmNode, type SwarmpackPeer } from '@swarmpack/dht-provider'

export interface LocalPeer {
  name: string
  peer: SwarmpackPeer
  store: FsBlockstore
  node: SwarmNode
  /** Packs a directory into this peer's store, pins it and announces it. */
  add: (dir: string, name: string, version: string) => Promise<{ root: CID, blocks: number, bytes: number }>
  stop: () => Promise<void>
}

export interface LocalPeerOptions {
  name?: string
  /** Peer key in `<dataDir>/peer.key`, blocks in `<dataDir>/store`. */
  dataDir: string
  bootstrap?: string[]
  mode?: SharingMode
  /** Default loopback (everything on 127.0.0.1). */
  network?: 'internet' | 'lan' | 'loopback'
  listen?: string[]
}

export async function startLocalPeer (options: LocalPeerOptions): Promise<LocalPeer> {
  const dataDir = resolve(options.dataDir)
  const store = await FsBlockstore.open(join(dataDir, 'store'), { fsync: false })
  const peer = await createSwarmpackPeer({
    dataDir,
    network: options.network ?? 'loopback',
    bootstrap: options.bootstrap ?? [],
    ...(options.listen !== undefined ? { listen: options.listen } : {})
  })
  const node = await createSwarmNode({ peer, blockstore: store, mode: options.mode ?? 'share' })
  return {
    name: options.name ?? peer.peerId.toString().slice(-8),
    peer,
    store,
    node,
    add: async (dir, name, version) => {
      const r = await pack(resolve(dir), { name, version }, { blockstore: store })
      await store.pin(`${name}@${version}`, r.root)
      await node.announce(r.root)
      return { root: r.root, blocks: r.blocks, bytes: r.totalSize }
    },
    stop: async () => {
      await node.stop()
      await peer.stop()
      await store.close()
    }
  }
}

/**
 * Starts `count` peers on loopback under `baseDir/peer-<i>`, all joining through peer 0, and
 * waits until every routing table knows at least one other peer.
 */
export async function startLocalSwarm (count: number, baseDir: string, options: { mode?: SharingMode } = {}): Promise<LocalPeer[]> {
  const first = await startLocalPeer({ name: 'peer-0', dataDir: join(baseDir, 'peer-0'), ...options })
  const boot = first.peer.multiaddrs().map(String)
  const rest = await Promise.all(Array.from({ length: count - 1 }, async (_, i) =>
    startLocalPeer({ name: `peer-${i + 1}`, dataDir: join(baseDir, `peer-${i + 1}`), bootstrap: boot, ...options })))
  const swarm = [first, ...rest]
  await Promise.all(swarm.map(async p => p.peer.waitForRoutingTable(Math.min(count - 1, 1), { timeout: 60_000, refreshEvery: 5000 })))
  return swarm
}

export async function stopSwarm (swarm: LocalPeer[]): Promise<void> {
  await Promise.all(swarm.map(async p => p.stop()))
}
