/**
 * The multi-source fetcher (resolver's createFetcher): a 100 MiB package fetched by a separate
 * process (test/helpers/fetch-client.ts) from one peer (test/helpers/swarm-peer.ts, DHT + Bitswap) and one
 * nginx mirror, together and each alone; then the only peer is SIGKILLed at 50 % and we time how
 * long the mirror takes to carry the transfer. Baselines from memory, measured in the same run:
 * undici reading one file of the same size from the same nginx and discarding it, and node:crypto
 * SHA-256 over the same block bytes.
 *
 *   npm run bench -- fetch
 *   SWARMPACK_BENCH_MIB=32 SWARMPACK_BENCH_REPEATS=3 npm run bench -- fetch
 */
import '@swarmpack/core/polyfill'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { FsBlockstore, listManifestCids, parseCid, storeProvider } from '@swarmpack/core'
import { exportHttpMirror } from '@swarmpack/http-provider'
import { NGINX, startNginx } from '../packages/http-provider/test/helpers/nginx.js'
import { ROOT, seedDataDir, startNode, stopAll, writePackageDir, type ChildPeer, type NodeEvent } from '../test/helpers/swarm.js'

const MIB = 1024 * 1024
const SIZE_MIB = Number(process.env.SWARMPACK_BENCH_MIB ?? 100)
const REPEATS = Number(process.env.SWARMPACK_BENCH_REPEATS ?? 3)
const CACHE = join(ROOT, 'bench/fixtures/cache', `fetch-${SIZE_MIB}m`)
const CLIENT = join(ROOT, 'test/helpers/fetch-client.ts')
const COMMON = ['--network', 'loopback', '--listen', '/ip4/127.0.0.1/tcp/0']

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
const load = (): string => loadavg().map(x => x.toFixed(1)).join(' ')

/** The package (packed into a peer data dir) and its exported mirror, made once and cached (gitignored). */
async function fixture (): Promise<{ root: string, seedDir: string, mirrorDir: string }> {
  const rootFile = join(CACHE, 'root.txt')
  const seedDir = join(CACHE, 'seed')
  const mirrorDir = join(CACHE, 'mirror')
  if (existsSync(rootFile)) return { root: (await readFile(rootFile, 'utf8')).trim(), seedDir, mirrorDir }
  await rm(CACHE, { recursive: true, force: true })
  await mkdir(CACHE, { recursive: true })
  console.log(`preparing a ${SIZE_MIB} MiB package in ${CACHE} ...`)
  await writePackageDir(join(CACHE, 'content'), SIZE_MIB * MIB, `fetch-bench-${SIZE_MIB}`)
  const { root } = await seedDataDir(seedDir, join(CACHE, 'content'))
  const store = await FsBlockstore.open(join(seedDir, 'store'), { fsync: false })
  try {
    await exportHttpMirror(store, [root], mirrorDir, { fsync: false })
    // the same bytes as one file on the same nginx, for the undici baseline
    const chunks: Buffer[] = []
    for (const cid of await listManifestCids(root, storeProvider(store))) chunks.push(Buffer.from(await store.getBytes(cid)))
    await writeFile(join(mirrorDir, 'ipfs', 'wholefile'), Buffer.concat(chunks))
  } finally {
    await store.close()
  }
  await rm(join(CACHE, 'content'), { recursive: true, force: true })
  await writeFile(rootFile, root.toString())
  return { root: root.toString(), seedDir, mirrorDir }
}

interface Run { mibs: number, ms: number, shares: string, event: NodeEvent, client: ChildPeer }

async function main (): Promise<void> {
  if (NGINX === undefined) { console.log('nginx is not installed (apt-get install -y nginx-light): skipping'); return }
  const { root, seedDir, mirrorDir } = await fixture()
  const loadStart = load()
  const nginx = (await startNginx(mirrorDir))!
  const procs: ChildPeer[] = []
  let clients = 0
  try {
    // baselines from memory, same run, same bytes
    const whole = await readFile(join(mirrorDir, 'ipfs', 'wholefile'))
    const bytes = whole.byteLength
    const shaRuns: number[] = []
    const undiciRuns: number[] = []
    for (let i = 0; i < REPEATS; i++) {
      let t = performance.now()
      createHash('sha256').update(whole).digest()
      shaRuns.push(bytes / MIB / ((performance.now() - t) / 1000))
      const agent = new Agent()
      t = performance.now()
      const res = await request(`${nginx.url}ipfs/wholefile`, { dispatcher: agent })
      for await (const chunk of res.body) void chunk
      undiciRuns.push(bytes / MIB / ((performance.now() - t) / 1000))
      await agent.close()
    }

    const hub = await startNode('hub', [...COMMON, '--data-dir', join(CACHE, 'hub')])
    procs.push(hub)
    let seed = await startNode('seed', [...COMMON, '--bootstrap', hub.multiaddrs[0], '--data-dir', seedDir])
    procs.push(seed)

    /** A fresh fetching process with an empty store; waits until the DHT knows the seed. */
    const client = async (args: string[]): Promise<ChildPeer> => {
      const name = `client-${clients++}`
      const dataDir = join(CACHE, name)
      await rm(dataDir, { recursive: true, force: true })
      const c = await startNode(name, ['--data-dir', dataDir, '--bootstrap', hub.multiaddrs[0], ...args], { script: CLIENT })
      procs.push(c)
      for (let i = 0; (await c.command('status', 'status')).routingTable < 2; i++) {
        if (i > 150) throw new Error('routing table did not fill')
        await new Promise(resolve => setTimeout(resolve, 200))
      }
      return c
    }
    const fetchOnce = async (policy: string, args: string[] = []): Promise<Run> => {
      const c = await client(['--mirror', nginx.url, ...args])
      const e = await c.command(`fetch ${root} ${policy}`, 'fetched', 600_000)
      await c.stop()
      await rm(join(CACHE, c.name), { recursive: true, force: true })
      const r = e.result as { ms: number, bytes: { network: number }, sources: Array<{ source: string, bytes: number }> }
      const shares = r.sources.map(s => `${s.source.startsWith('http:') ? 'mirror' : 'peer'} ${(s.bytes / r.bytes.network * 100).toFixed(0)}%`).join(', ')
      return { mibs: r.bytes.network / MIB / (r.ms / 1000), ms: r.ms, shares, event: e, client: c }
    }

    /** The swarm path alone, without the fetcher (DhtProvider.fetchDag): the fetcher's own cost. */
    const directOnce = async (): Promise<number> => {
      const c = await client([])
      const e = await c.command(`direct ${root}`, 'direct', 600_000)
      await c.stop()
      await rm(join(CACHE, c.name), { recursive: true, force: true })
      return (e.bytes as number) / MIB / ((e.ms as number) / 1000)
    }

    console.log(`${(bytes / MIB).toFixed(1)} MiB package; one peer (test/helpers/swarm-peer.ts) and one nginx mirror; the fetcher in its own process; ${REPEATS} repeats; load average ${loadStart}\n`)
    const cases: Array<[string, string]> = [['peer alone (peers-only)', 'peers-only'], ['mirror alone (mirrors-only)', 'mirrors-only'], ['together, peers-first (default)', 'peers-first'], ['together, race', 'race']]
    const results = new Map<string, Run[]>(cases.map(([name]) => [name, []]))
    await fetchOnce('peers-only') // warm-up: JIT, page cache, DHT records
    const directRuns: number[] = []
    const rssRuns: number[] = []
    for (let i = 0; i < REPEATS; i++) {
      directRuns.push(await directOnce())
      console.log(`  run ${i + 1}: peer alone, DhtProvider.fetchDag without the fetcher: ${directRuns.at(-1)!.toFixed(1)} MiB/s`)
      for (const [name, policy] of cases) {
        const r = await fetchOnce(policy)
        results.get(name)!.push(r)
        rssRuns.push(((r.event.peakRss as number) - (r.event.rssBefore as number)) / MIB)
        console.log(`  run ${i + 1}: ${name}: ${r.mibs.toFixed(1)} MiB/s (${r.ms} ms; ${r.shares})`)
      }
    }

    // the only peer killed at 50 %: seconds until the mirror carries the transfer
    const switches: Array<{ first: number, carry: number, gap: number }> = []
    for (let i = 0; i < REPEATS; i++) {
      const c = await client(['--mirror', nginx.url])
      const start = c.next(e => e.event === 'start', 120_000, 'start')
      c.send(`fetch ${root}`)
      const total = (await start).totalBlocks as number
      const half = await c.next(e => e.event === 'block' && (e.n as number) >= total / 2, 600_000, 'half the blocks')
      seed.kill('SIGKILL')
      const killedAt = half.t as number
      await seed.exited
      const done = await c.waitFor(e => e.event === 'fetched' || e.event === 'error', 600_000, 'the end of the fetch')
      if (done.event !== 'fetched') throw new Error(`fetch after the kill failed: ${String(done.message)}`)
      const after = c.events.filter(e => e.event === 'block' && (e.t as number) >= killedAt)
      const fromMirror = after.filter(e => String(e.source).startsWith('http:'))
      // "carrying": the mirror has delivered 1 MiB since the kill
      let acc = 0
      const carry = fromMirror.find(e => (acc += e.bytes as number) >= MIB)
      let gap = 0
      let prev = killedAt
      for (const e of after) { gap = Math.max(gap, (e.t as number) - prev); prev = e.t as number }
      switches.push({ first: ((fromMirror[0]?.t ?? NaN) - killedAt) / 1000, carry: ((carry?.t ?? NaN) - killedAt) / 1000, gap: gap / 1000 })
      console.log(`  kill run ${i + 1}: first mirror block ${switches.at(-1)!.first.toFixed(2)} s after the kill, 1 MiB from the mirror after ${switches.at(-1)!.carry.toFixed(2)} s, longest gap ${switches.at(-1)!.gap.toFixed(2)} s`)
      await c.stop()
      seed = await startNode('seed', [...COMMON, '--bootstrap', hub.multiaddrs[0], '--data-dir', seedDir])
      procs.push(seed)
    }

    const sha = median(shaRuns)
    const undici = median(undiciRuns)
    console.log('\n| fetch of the package (median) | MiB/s | vs undici one file | vs SHA-256 | shares (last run) |')
    console.log('|---|---|---|---|---|')
    console.log(`| node:crypto SHA-256 over the bytes | ${sha.toFixed(0)} | | 100% | |`)
    console.log(`| undici, one file from the same nginx, discarded | ${undici.toFixed(0)} | 100% | ${(undici / sha * 100).toFixed(0)}% | |`)
    const direct = median(directRuns)
    console.log(`| peer alone, DhtProvider.fetchDag without the fetcher | ${direct.toFixed(1)} | ${(direct / undici * 100).toFixed(0)}% | ${(direct / sha * 100).toFixed(1)}% | peer 100% |`)
    const med = new Map<string, number>()
    for (const [name] of cases) {
      const runs = results.get(name)!
      const m = median(runs.map(r => r.mibs))
      med.set(name, m)
      console.log(`| ${name} | ${m.toFixed(1)} | ${(m / undici * 100).toFixed(0)}% | ${(m / sha * 100).toFixed(1)}% | ${runs.at(-1)!.shares} |`)
    }
    const faster = Math.max(med.get(cases[0][0])!, med.get(cases[1][0])!)
    const together = Math.max(med.get(cases[2][0])!, med.get(cases[3][0])!)
    console.log(`\ntogether (best policy) / faster alone: ${(together / faster).toFixed(2)}x; peers-first ${(med.get(cases[2][0])! / faster).toFixed(2)}x, race ${(med.get(cases[3][0])! / faster).toFixed(2)}x (target >= 1: ${together >= faster * 0.98 ? 'met' : 'MISSED'})`)
    const carry = median(switches.map(s => s.carry))
    console.log(`peer killed at 50 %: first mirror block after ${median(switches.map(s => s.first)).toFixed(2)} s, mirror carrying (1 MiB delivered) after ${carry.toFixed(2)} s, longest gap ${median(switches.map(s => s.gap)).toFixed(2)} s (medians; target < 2 s: ${carry < 2 ? 'met' : 'MISSED'})`)
    console.log(`fetching process: peer-alone fetcher / DhtProvider.fetchDag ${(med.get(cases[0][0])! / direct).toFixed(2)}x; RSS growth during a fetch: median ${median(rssRuns).toFixed(0)} MiB, max ${Math.max(...rssRuns).toFixed(0)} MiB`)
    console.log(`load average at the start: ${loadStart}; at the end: ${load()}`)
  } finally {
    await stopAll(procs)
    await nginx.close()
    for (let i = 0; i < clients; i++) await rm(join(CACHE, `client-${i}`), { recursive: true, force: true })
    await rm(join(CACHE, 'hub'), { recursive: true, force: true })
  }
}

await main()
process.exit(0)
