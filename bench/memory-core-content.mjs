// Child process of bench/pack.bench.ts: packs or unpacks one tree with the on-disk FsBlockstore
// and prints its peak resident memory as JSON on stdout. Plain JavaScript on the compiled package
// (dist/), as a host application runs it: no TypeScript loader in the measurement.
//
//   memory-core-content.mjs idle
//   memory-core-content.mjs pack <dir> <store> [workers: 0 or 1; default: pack's own choice]
//   memory-core-content.mjs unpack <root cid> <store> <target>
import { readFileSync } from 'node:fs'
import { FsBlockstore, pack, parseCid, storeProvider, unpack } from '@swarmpack/core'

const [mode, a, b, c] = process.argv.slice(2)
// Peak private memory (RssAnon) and peak file-backed resident pages (RssFile: code, and the store's
// LMDB memory map, i.e. page cache the kernel can drop at any time), sampled, next to VmHWM (their sum).
const peaks = { anon: 0, file: 0 }
const sample = () => {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const kb = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0)
    peaks.anon = Math.max(peaks.anon, kb('RssAnon'))
    peaks.file = Math.max(peaks.file, kb('RssFile'))
  } catch {}
}
const sampler = setInterval(sample, 20)
const t0 = performance.now()
let out = {}
if (mode === 'pack') {
  const store = await FsBlockstore.open(b, { fsync: false })
  const r = await pack(a, { name: 'memory-test', version: '1.0.0' }, { blockstore: store, workers: c === undefined ? undefined : Number(c) })
  await store.close()
  out = { root: r.root.toString(), totalSize: r.totalSize, blocks: r.blocks }
} else if (mode === 'unpack') {
  const store = await FsBlockstore.open(b, { fsync: false })
  const r = await unpack(parseCid(a), storeProvider(store), c)
  await store.close()
  out = { totalSize: r.totalSize }
}
out.ms = performance.now() - t0
sample()
clearInterval(sampler)
out.rssAnonPeakMiB = peaks.anon / 1024
out.rssFilePeakMiB = peaks.file / 1024
out.maxRssMiB = process.resourceUsage().maxRSS / 1024
// VmHWM: the high-water mark of this process's own address space. On Linux, getrusage's maxRSS
// also counts the parent's resident size at fork time (it survives exec), so a child of a large
// parent reports the parent's size; VmHWM does not have that flaw.
try {
  const hwm = readFileSync('/proc/self/status', 'utf8').match(/^VmHWM:\s+(\d+) kB/m)
  if (hwm !== null) out.vmHwmMiB = Number(hwm[1]) / 1024
} catch {}
process.stdout.write(JSON.stringify(out) + '\n')
