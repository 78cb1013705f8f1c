/** Shared fixtures for the Bitswap tests: real libp2p nodes on 127.0.0.1 and random raw blocks. */
import '@swarmpack/core/polyfill'
import { randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { rawCid } from '@swarmpack/core'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { createLibp2p } from 'libp2p'
import { Bitswap } from '../src/bitswap/index.js'
import type { BitswapInit } from '../src/bitswap/index.js'
import type { Libp2p } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export async function createNode (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] },
    services: { identify: identify() }
  })
}

export interface TestPeer {
  libp2p: Libp2p
  blockstore: MemoryBlockstore
  bitswap: Bitswap
}

export async function createPeer (init: Partial<Omit<BitswapInit, 'libp2p'>> = {}): Promise<TestPeer> {
  const libp2p = await createNode()
  const blockstore = new MemoryBlockstore()
  const bitswap = new Bitswap({ libp2p, blockstore, ...init })
  await bitswap.start()
  return { libp2p, blockstore, bitswap }
}

export async function stopPeers (...peers: Array<TestPeer | undefined>): Promise<void> {
  await Promise.all(peers.map(async p => {
    if (p === undefined) return
    await p.bitswap.stop().catch(() => {})
    await Promise.resolve(p.libp2p.stop()).catch(() => {})
  }))
}

export async function connect (a: TestPeer | Libp2p, b: TestPeer | Libp2p): Promise<void> {
  const from = 'libp2p' in a ? a.libp2p : a
  const to = 'libp2p' in b ? b.libp2p : b
  await from.dial(to.getMultiaddrs()[0])
}

export interface TestBlock { cid: CID, bytes: Uint8Array }

export function randomBlocks (count: number, size: number): TestBlock[] {
  const out: TestBlock[] = []
  for (let i = 0; i < count; i++) {
    const bytes = new Uint8Array(randomBytes(size))
    out.push({ cid: rawCid(bytes), bytes })
  }
  return out
}

export async function putAll (store: MemoryBlockstore, blocks: TestBlock[]): Promise<void> {
  for (const b of blocks) await store.put(b.cid, b.bytes)
}

export async function readAll (store: MemoryBlockstore, cid: CID): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const c of store.get(cid)) chunks.push(c)
  return new Uint8Array(Buffer.concat(chunks))
}
