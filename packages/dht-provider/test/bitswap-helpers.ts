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
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { varint } from 'multiformats'
import { BITSWAP_PROTOCOL, Bitswap, decodeMessage, splitMessages } from '../src/bitswap/index.js'
import type { BitswapInit, OutgoingContent } from '../src/bitswap/index.js'
import type { Message } from '../src/bitswap/wire.js'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'
import type { CID } from 'multiformats/cid'

/** TCP + noise + yamux + identify on 127.0.0.1, no DHT: what every test node (ours or Helia's) runs. */
export function loopbackLibp2pOptions (): Libp2pOptions<{ identify: Identify }> {
  return {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] },
    services: { identify: identify() }
  }
}

export async function createNode (): Promise<Libp2p> {
  return createLibp2p(loopbackLibp2pOptions())
}

export interface TestPeer {
  libp2p: Libp2p
  blockstore: MemoryBlockstore
  bitswap: Bitswap
}

export async function createPeer (init: Partial<Omit<BitswapInit, 'libp2p' | 'blockstore'>> & { blockstore?: MemoryBlockstore } = {}): Promise<TestPeer> {
  const libp2p = await createNode()
  const blockstore = init.blockstore ?? new MemoryBlockstore()
  const bitswap = new Bitswap({ ...init, libp2p, blockstore })
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

/**
 * A bare libp2p node speaking Bitswap by hand: sends exactly the messages a test builds and
 * records every message it receives, so tests can check the wire behaviour of our node.
 */
export class RawBitswapClient {
  readonly received: Message[] = []
  private readonly waiters = new Set<() => void>()
  /** Called with each message received and its sender; what it returns is sent back. */
  answer?: (message: Message) => OutgoingContent | undefined

  private constructor (readonly libp2p: Libp2p) {}

  static async create (): Promise<RawBitswapClient> {
    const client = new RawBitswapClient(await createNode())
    await client.libp2p.handle(BITSWAP_PROTOCOL, (stream, connection) => {
      const decoder = new LengthPrefixedDecoder({ maxDataLength: 8 * 1024 * 1024, maxBufferSize: 64 * 1024 * 1024 })
      stream.addEventListener('message', (evt) => {
        for (const frame of decoder.decode(evt.data)) {
          const message = decodeMessage(frame.subarray())
          client.received.push(message)
          const reply = client.answer?.(message)
          if (reply !== undefined) client.send(connection.remotePeer, reply).catch(() => {})
          for (const w of [...client.waiters]) w()
        }
      })
    })
    return client
  }

  async send (target: Libp2p | PeerId, content: OutgoingContent): Promise<void> {
    const stream = await this.libp2p.dialProtocol('peerId' in target ? target.peerId : target, BITSWAP_PROTOCOL)
    for (const m of splitMessages(content)) {
      const prefix = new Uint8Array(varint.encodingLength(m.byteLength))
      varint.encodeTo(m.byteLength, prefix, 0)
      stream.send(prefix)
      if (!stream.send(m)) await stream.onDrain()
    }
    await stream.close()
  }

  /** Waits until `check` holds over the messages received so far. */
  async waitFor<T> (check: (received: Message[]) => T | undefined, ms = 10_000): Promise<T> {
    const end = Date.now() + ms
    while (true) {
      const result = check(this.received)
      if (result !== undefined && result !== false) return result
      if (Date.now() > end) throw new Error('expected bitswap message did not arrive')
      await new Promise<void>(resolve => {
        const timer = setTimeout(done, 200)
        function done (): void { clearTimeout(timer); waiters.delete(done); resolve() }
        const waiters = this.waiters
        waiters.add(done)
      })
    }
  }

  async stop (): Promise<void> {
    await this.libp2p.stop()
  }
}

/**
 * Polls `check` until it holds. The bound is generous (30 s) because these tests share a loaded
 * machine: it only decides how long a broken build takes to fail, never whether a good one passes.
 */
export async function waitUntil (check: () => boolean | Promise<boolean>, what = 'condition', timeout = 30_000): Promise<void> {
  const end = Date.now() + timeout
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not met within ${timeout} ms`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}
