/**
 * Test fixture: a swarmpack peer that misbehaves in a way a test chooses, at a point it chooses,
 * so tests do not depend on when a signal or a kill lands. It holds a real package in its store
 * and announces it like any peer, then, as it serves blocks:
 *
 *   --corrupt           flips one byte of every block it sends (the fetcher must ban it)
 *   --die-after <n>     kills itself (SIGKILL) when asked for block n + 1: dies mid-transfer
 *   --stall-after <n>   holds every block after the n-th until the line `release` on stdin
 *
 *   faulty-peer.ts --data-dir <dir> --bootstrap <ma> [--json] [--listen <ma>] <fault>
 *
 * Events (JSON lines): `ready`, `stalled` (once, with `served` and the `bytes` read so far), `dying`
 * (with `served`), `stopping`.
 */
import '@swarmpack/core/polyfill'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { FsBlockstore, type CID } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer, type SharingBlockstore } from '@swarmpack/dht-provider'

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    bootstrap: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    listen: { type: 'string', multiple: true },
    network: { type: 'string' },
    corrupt: { type: 'boolean', default: false },
    'die-after': { type: 'string' },
    'stall-after': { type: 'string' }
  }
})
const dieAfter = values['die-after'] === undefined ? Infinity : Number(values['die-after'])
const stallAfter = values['stall-after'] === undefined ? Infinity : Number(values['stall-after'])
const emit = (event: string, data: Record<string, unknown> = {}): void => { process.stdout.write(JSON.stringify({ event, ...data }) + '\n') }

let released: () => void = () => {}
const release = new Promise<void>(resolve => { released = resolve })
createInterface({ input: process.stdin }).on('line', (line) => { if (line.trim() === 'release') released() })

const store = await FsBlockstore.open(join(values['data-dir'] ?? '.', 'store'), { fsync: false })
let asked = 0 // block reads begun (counted first: reads run concurrently)
let served = 0
let servedBytes = 0
let stalled = false
const faulty: SharingBlockstore = {
  has: async (cid: CID) => store.has(cid),
  put: async (cid: CID, bytes: Uint8Array) => store.put(cid, bytes),
  pins: () => store.pins(),
  get: async function * (cid: CID) {
    const n = ++asked
    if (n > dieAfter) {
      emit('dying', { served: dieAfter })
      process.kill(process.pid, 'SIGKILL')
    }
    if (n > stallAfter) {
      if (!stalled) { stalled = true; emit('stalled', { served: stallAfter, bytes: servedBytes }) }
      await release
    }
    const bytes = await store.getBytes(cid)
    served++
    servedBytes += bytes.byteLength
    if (values.corrupt !== true) { yield bytes; return }
    const bad = Uint8Array.from(bytes)
    bad[bad.length >> 1] ^= 0xff
    yield bad
  }
} as unknown as SharingBlockstore
const peer = await createSwarmpackPeer({ network: 'loopback', listen: values.listen ?? ['/ip4/127.0.0.1/tcp/0'], bootstrap: values.bootstrap ?? [] })
const node = await createSwarmNode({ peer, blockstore: faulty })
emit('ready', { peerId: peer.peerId.toString(), multiaddrs: peer.multiaddrs().map(String), corrupt: values.corrupt, dieAfter, stallAfter })
const stop = async (): Promise<void> => {
  emit('stopping', { served })
  released()
  await node.stop()
  await peer.stop()
  await store.close()
  process.exit(0)
}
process.on('SIGTERM', () => { void stop() })
process.on('SIGINT', () => { void stop() })
