/**
 * Soak: one node (createSwarmpack, in this process) installs, updates and uninstalls a package
 * with a dependency in a loop against a small swarm (a seed node that installed from a mirror
 * directory, and one more node that installed from the seed), with `gc({ keep: 1 })` after each
 * round so every install fetches again (peers first, a mirror directory for what they lack).
 * Every round samples RSS, heap after a full GC, open file descriptors and the DHT routing table;
 * the report compares the first minute with the last. Not part of the test suite.
 *
 *   flock /work/coord/bench.lock npm run bench -- soak          (SOAK_SECONDS, default 600)
 *
 * SOAK_HEAP_SNAPSHOTS=<dir> writes a heap snapshot after round 20 and one at the end, to compare
 * what the heap gained (Chrome DevTools' comparison view, or any .heapsnapshot reader).
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8'
import { createSwarmpack } from 'swarmpack'
import { TestPublisher, seededBytes } from '../packages/swarmpack/test/helpers/publisher.js'
import { ChildPeer, ROOT, stopAll } from '../test/helpers/swarm.js'

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600)
const SNAPSHOTS = process.env.SOAK_HEAP_SNAPSHOTS
const SCRIPT = join(ROOT, 'test/fixtures/swarmpack-node.ts')
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})
const dir = await mkdtemp(join(tmpdir(), 'swarmpack-soak-'))
const children: ChildPeer[] = []

interface Sample { t: number, round: number, rss: number, heap: number, code: number, fds: number, routingTable: number, peers: number }

try {
  const pub = await TestPublisher.create(join(dir, 'publisher'))
  const files = (v: string, seed: number): Record<string, string | Uint8Array> => ({ 'index.js': `export const v = '${v}'\n`, 'data.bin': seededBytes(512 * 1024, seed) })
  await pub.publish({ name: 'b', version: '1.0.0', files: files('b1', 1), entry: 'index.js' })
  await pub.publish({ name: 'a', version: '1.0.0', files: files('a1', 2), dependencies: { b: '^1' }, entry: 'index.js' })
  await pub.publish({ name: 'a', version: '1.1.0', files: files('a2', 3), dependencies: { b: '^1' }, entry: 'index.js' })
  await pub.publishIndex()
  const config = async (name: string, extra: Record<string, unknown>): Promise<string> => {
    const file = join(dir, `${name}.json`)
    await writeFile(file, JSON.stringify({
      ...pub.trustConfig(),
      indexers: [{ ...pub.trustConfig().indexers[0], heads: { directories: [pub.mirrorDir] } }],
      network: { mode: 'loopback' },
      ...extra
    }))
    return file
  }
  const startChild = async (name: string, extra: Record<string, unknown>): Promise<ChildPeer> => {
    const c = new ChildPeer(name, SCRIPT, [join(dir, name), await config(name, { modules: { a: '^1.0.0' }, ...extra }), 'serve'])
    children.push(c)
    await c.ready()
    await c.command('apply', 'applied', 180_000)
    return c
  }
  const seed = await startChild('seed', { sources: { directories: [{ path: pub.mirrorDir }], policy: 'mirrors-only' } })
  const peer = await startChild('peer', { sources: { bootstrap: seed.multiaddrs, policy: 'peers-only' } })
  const node = await createSwarmpack({
    dataDir: join(dir, 'soak'),
    // peers first; the mirror directory covers a@1.0.0, which the swarm (installed ^1.0.0 = 1.1.0) lacks
    config: await config('soak', { modules: {}, sources: { bootstrap: [...seed.multiaddrs, ...peer.multiaddrs], directories: [{ path: pub.mirrorDir }], policy: 'peers-first' } })
  })
  console.log(`swarm ready; soaking for ${SECONDS} s; load average ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
  const samples: Sample[] = []
  const start = Date.now()
  let round = 0
  while (Date.now() - start < SECONDS * 1000) {
    round++
    await node.install({ a: '~1.0.0' })
    await node.install({ a: '^1.1.0' })          // the update: a new version of a, b unchanged
    await node.uninstall(['a'])
    await node.gc({ keep: 1 })
    gc()
    if (SNAPSHOTS !== undefined && round === 20) console.log(`heap snapshot: ${writeHeapSnapshot(join(SNAPSHOTS, 'soak-round-20.heapsnapshot'))}`)
    const m = process.memoryUsage()
    samples.push({
      t: (Date.now() - start) / 1000,
      round,
      rss: m.rss,
      heap: m.heapUsed,
      // compiled code: V8 keeps optimizing functions that run once a round for hundreds of rounds
      code: getHeapSpaceStatistics().filter(sp => sp.space_name.startsWith('code')).reduce((sum, sp) => sum + sp.space_used_size, 0),
      fds: (await readdir('/proc/self/fd')).length,
      routingTable: node.peer?.routingTableSize() ?? 0,
      peers: node.peer?.libp2p.getPeers().length ?? 0
    })
  }
  if (SNAPSHOTS !== undefined) {
    gc()
    console.log(`heap snapshot: ${writeHeapSnapshot(join(SNAPSHOTS, `soak-round-${round}.heapsnapshot`))}`)
  }
  await node.stop()
  const mib = (n: number): string => (n / 2 ** 20).toFixed(1)
  const window = (from: number, to: number): Sample[] => samples.filter(s => s.t >= from && s.t < to)
  const first = window(0, Math.min(60, SECONDS / 5))
  const last = window(SECONDS - Math.min(60, SECONDS / 5), Infinity)
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
  console.log(`\n${round} rounds (install, update, uninstall, gc) in ${((Date.now() - start) / 1000).toFixed(0)} s`)
  console.log('| measure | first window (median) | last window (median) | max over the run |')
  console.log('|---|---|---|---|')
  console.log(`| RSS (MiB) | ${mib(med(first.map(s => s.rss)))} | ${mib(med(last.map(s => s.rss)))} | ${mib(Math.max(...samples.map(s => s.rss)))} |`)
  console.log(`| heap after GC (MiB) | ${mib(med(first.map(s => s.heap)))} | ${mib(med(last.map(s => s.heap)))} | ${mib(Math.max(...samples.map(s => s.heap)))} |`)
  console.log(`| heap after GC without compiled code (MiB) | ${mib(med(first.map(s => s.heap - s.code)))} | ${mib(med(last.map(s => s.heap - s.code)))} | ${mib(Math.max(...samples.map(s => s.heap - s.code)))} |`)
  console.log(`| compiled code (MiB) | ${mib(med(first.map(s => s.code)))} | ${mib(med(last.map(s => s.code)))} | ${mib(Math.max(...samples.map(s => s.code)))} |`)
  console.log(`| open fds | ${med(first.map(s => s.fds))} | ${med(last.map(s => s.fds))} | ${Math.max(...samples.map(s => s.fds))} |`)
  console.log(`| DHT routing table | ${med(first.map(s => s.routingTable))} | ${med(last.map(s => s.routingTable))} | ${Math.max(...samples.map(s => s.routingTable))} |`)
  console.log(`| connected peers | ${med(first.map(s => s.peers))} | ${med(last.map(s => s.peers))} | ${Math.max(...samples.map(s => s.peers))} |`)
  console.log(`load average at end: ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
  await pub.close()
} finally {
  await stopAll(children)
  await rm(dir, { recursive: true, force: true })
}
