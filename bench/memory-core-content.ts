/**
 * Child process of bench/pack.bench.ts: packs or unpacks one tree with the on-disk FsBlockstore
 * and prints its peak resident memory (process.resourceUsage().maxRSS) as JSON on stdout.
 *
 *   memory-core-content.ts idle
 *   memory-core-content.ts pack <dir> <store>
 *   memory-core-content.ts unpack <root cid> <store> <target>
 */
import { FsBlockstore, pack, parseCid, storeProvider, unpack } from '@swarmpack/core'

const [mode, a, b, c] = process.argv.slice(2)
const t0 = performance.now()
let out: Record<string, unknown> = {}
if (mode === 'pack') {
  const store = await FsBlockstore.open(b, { fsync: false })
  const r = await pack(a, { name: 'memory-test', version: '1.0.0' }, { blockstore: store })
  await store.close()
  out = { root: r.root.toString(), totalSize: r.totalSize, blocks: r.blocks }
} else if (mode === 'unpack') {
  const store = await FsBlockstore.open(b, { fsync: false })
  const r = await unpack(parseCid(a), storeProvider(store), c)
  await store.close()
  out = { totalSize: r.totalSize }
}
out.ms = performance.now() - t0
out.maxRssMiB = process.resourceUsage().maxRSS / 1024
process.stdout.write(JSON.stringify(out) + '\n')
