/**
 * Memory of the multi-source fetcher: a package (default 160 MiB) fetched from a directory mirror
 * into a block store in this process, with a forced GC every 1,000 blocks; prints live heap +
 * array buffers above the start. Flat numbers mean memory does not grow with the package.
 *
 *   npm run bench -- fetch-memory            (run-bench passes --expose-gc)
 *   SWARMPACK_BENCH_MIB=400 npm run bench -- fetch-memory
 */
import '@swarmpack/core/polyfill'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsBlockstore, FsProvider, exportMirror } from '@swarmpack/core'
import { createFetcher } from '@swarmpack/resolver'
import { seedDataDir, writePackageDir } from '../test/helpers/swarm.js'

const MIB = 1048576
const size = Number(process.env.SWARMPACK_BENCH_MIB ?? 160)
const dir = await mkdtemp(join(tmpdir(), 'mem-'))
await writePackageDir(join(dir, 'content'), size * MIB, 'mem')
const { root } = await seedDataDir(join(dir, 'seed'), join(dir, 'content'))
await rm(join(dir, 'content'), { recursive: true })
const seedStore = await FsBlockstore.open(join(dir, 'seed', 'store'), { fsync: false })
await exportMirror(seedStore, [root], join(dir, 'mirror'))
await seedStore.close()
const store = await FsBlockstore.open(join(dir, 'client'), { fsync: false })
const fetcher = createFetcher({ blockstore: store, sources: [{ provider: new FsProvider(join(dir, 'mirror')), kind: 'mirror' }] })
const gc = (globalThis as { gc?: () => void }).gc ?? (() => { throw new Error('run with --expose-gc (npm run bench does)') })
gc()
const base = process.memoryUsage()
const samples: number[] = []
let n = 0
const r = await fetcher.fetchDag(root, { onProgress: (e) => {
  if (e.type === 'swarmpack:fetch:block' && ++n % 1000 === 0) { gc(); const m = process.memoryUsage(); samples.push((m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers) / MIB) }
} })
console.log(`${size} MiB, ${r.blocks.total} blocks: live heap+buffers above start after GC, every 1000 blocks (MiB): ${samples.map(x => x.toFixed(1)).join(' ')}`)
await store.close()
await rm(dir, { recursive: true, force: true })
process.exit(0)
