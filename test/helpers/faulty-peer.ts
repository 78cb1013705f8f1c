/**
 * Test fixture: a swarmpack peer that serves corrupted blocks. It holds a real package in its
 * store and announces it like any peer, but flips one byte of every block it sends, so a
 * fetching peer must detect the bad bytes, ban it and get the package from others.
 *
 *   corrupt-peer.ts --data-dir <dir> --bootstrap <ma> [--json]
 */
import '@swarmpack/core/polyfill'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { FsBlockstore, type CID } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer, type SharingBlockstore } from '@swarmpack/dht-provider'

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    bootstrap: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    listen: { type: 'string', multiple: true },
    network: { type: 'string' }
  }
})
const store = await FsBlockstore.open(join(values['data-dir'] ?? '.', 'store'), { fsync: false })
let served = 0
const corrupting: SharingBlockstore = {
  has: async (cid: CID) => store.has(cid),
  put: async (cid: CID, bytes: Uint8Array) => store.put(cid, bytes),
  pins: () => store.pins(),
  get: async function * (cid: CID) {
    const bytes = await store.getBytes(cid)
    const bad = Uint8Array.from(bytes)
    bad[bad.length >> 1] ^= 0xff
    served++
    yield bad
  }
} as unknown as SharingBlockstore
const peer = await createSwarmpackPeer({ network: 'loopback', listen: values.listen ?? ['/ip4/127.0.0.1/tcp/0'], bootstrap: values.bootstrap ?? [] })
const node = await createSwarmNode({ peer, blockstore: corrupting })
process.stdout.write(JSON.stringify({ event: 'ready', peerId: peer.peerId.toString(), multiaddrs: peer.multiaddrs().map(String), corrupt: true }) + '\n')
const stop = async (): Promise<void> => {
  process.stdout.write(JSON.stringify({ event: 'stopping', corruptBlocksServed: served }) + '\n')
  await node.stop()
  await peer.stop()
  await store.close()
  process.exit(0)
}
process.on('SIGTERM', () => { void stop() })
process.on('SIGINT', () => { void stop() })
