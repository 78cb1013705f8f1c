/**
 * Swarm transfer throughput: a 100 MiB package fetched by one peer from one providing peer,
 * each in its own process, into the fetcher's on-disk store (FsBlockstore, durable) and into
 * memory, against two baselines measured in the same run between the same two processes:
 * (a) a raw libp2p stream pushing the same block bytes held in memory (no store on either side),
 * (b) Helia 7's bitswap fetching the same blocks (Helia node to Helia node) into its own
 * blockstore-fs, as a Helia user runs it. Then the same fetch from four providers into the store,
 * with the share each one served.
 *
 *   npm run bench -- dht-transfer
 *   SWARMPACK_BENCH_MIB=32 SWARMPACK_BENCH_REPEATS=3 npm run bench -- dht-transfer
 *
 * Profiling the fetching process: SWARMPACK_BENCH_CPU_PROF=<dir> starts the fetcher under
 * `node --cpu-prof` (the profile is written to <dir> when it exits) and runs only the fetches
 * into the store (SWARMPACK_BENCH_PROFILE_FOUR=1: from four providers), so the profile holds
 * little else; scripts/cpu-profile-summary.mjs <file> sums it by function group.
 */
import '@swarmpack/core/polyfill'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { FsBlockstore, pack } from '@swarmpack/core'

const ROOT = resolve(fileURLToPath(import.meta.url), '../..')

type Event = Record<string, any>

/** A child process speaking JSON lines (test/helpers/bench-peer.ts). */
class ChildPeer {
  readonly proc: ChildProcess
  readonly events: Event[] = []
  private readonly stderr: string[] = []
  private readonly waiters = new Set<{ match: (e: Event) => boolean, resolve: (e: Event) => void }>()
  peerId = ''
  multiaddrs: string[] = []
  readonly exited: Promise<unknown>

  constructor (readonly name: string, script: string, args: string[], nodeArgs: string[] = []) {
    this.proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', '--conditions=swarmpack-src', script, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let e: Event
      try { e = JSON.parse(line) as Event } catch { return }
      this.events.push(e)
      for (const w of [...this.waiters]) if (w.match(e)) { this.waiters.delete(w); w.resolve(e) }
    })
    createInterface({ input: this.proc.stderr! }).on('line', (line) => { this.stderr.push(line); if (this.stderr.length > 50) this.stderr.shift() })
    this.exited = new Promise(resolve => this.proc.once('exit', resolve))
  }

  async next (match: (e: Event) => boolean, timeout: number, what: string): Promise<Event> {
    return new Promise((resolve, reject) => {
      const w = { match, resolve: (e: Event) => { clearTimeout(timer); resolve(e) } }
      const timer = setTimeout(() => { this.waiters.delete(w); reject(new Error(`${this.name}: no ${what} in ${timeout} ms\n${this.stderr.join('\n')}`)) }, timeout)
      this.waiters.add(w)
    })
  }

  async ready (timeout: number): Promise<void> {
    const e = this.events.find(x => x.event === 'ready') ?? await this.next(x => x.event === 'ready', timeout, 'ready line')
    this.peerId = e.peerId
    this.multiaddrs = e.multiaddrs
  }

  send (line: string): void { this.proc.stdin!.write(line + '\n') }

  async stop (): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return
    this.proc.kill('SIGTERM')
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000)
    await this.exited
    clearTimeout(t)
  }
}

/** CPU seconds (user + system, all threads) a child has used so far, from /proc (Linux). */
function cpuSeconds (p: ChildPeer): number {
  try {
    const fields = readFileSync(`/proc/${p.proc.pid as number}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return NaN
  }
}

async function stopAll (peers: ChildPeer[]): Promise<void> { await Promise.all(peers.map(async p => p.stop())) }

/** Reproducible pseudo-random content: files of up to 4 MiB. */
async function writePackageDir (dir: string, bytes: number, seed: string): Promise<void> {
  await mkdir(join(dir, 'lib'), { recursive: true })
  const files = Math.ceil(bytes / (4 * 1048576))
  for (let f = 0; f < files; f++) {
    const size = Math.min(4 * 1048576, bytes - f * 4 * 1048576)
    const buf = Buffer.allocUnsafe(size)
    let state = createHash('sha256').update(`${seed}/${f}`).digest().readUInt32LE(0)
    for (let off = 0; off + 4 <= size; off += 4) { state = (state * 1664525 + 1013904223) >>> 0; buf.writeUInt32LE(state, off) }
    await writeFile(join(dir, 'lib', `part-${f}.bin`), buf)
  }
}

async function seedDataDir (dataDir: string, contentDir: string, name: string, version: string): Promise<{ root: { toString: () => string } }> {
  const store = await FsBlockstore.open(join(dataDir, 'store'), { fsync: false })
  try {
    const r = await pack(contentDir, { name, version }, { blockstore: store })
    await store.pin(`${name}@${version}`, r.root)
    return r
  } finally {
    await store.close()
  }
}

const MIB = Number(process.env.SWARMPACK_BENCH_MIB ?? 100)
const REPEATS = Number(process.env.SWARMPACK_BENCH_REPEATS ?? 3)
const CACHE = join(ROOT, 'bench/fixtures/cache', `dht-${MIB}m-lmdb`)
const SCRIPT = join(ROOT, 'test/helpers/bench-peer.ts')
const CPU_PROF = process.env.SWARMPACK_BENCH_CPU_PROF

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
const mibps = (r: { bytes: number, ms: number }): number => r.bytes / 1048576 / (r.ms / 1000)

/** Packs the package once into bench/fixtures/cache (gitignored) and reuses it. */
async function fixture (): Promise<{ store: string, root: string }> {
  const rootFile = join(CACHE, 'root.txt')
  if (existsSync(rootFile)) return { store: join(CACHE, 'node', 'store'), root: (await readFile(rootFile, 'utf8')).trim() }
  await rm(CACHE, { recursive: true, force: true })
  await mkdir(CACHE, { recursive: true })
  console.log(`preparing a ${MIB} MiB package in ${CACHE} ...`)
  await writePackageDir(join(CACHE, 'content'), MIB * 1048576, `bench-${MIB}`)
  const { root } = await seedDataDir(join(CACHE, 'node'), join(CACHE, 'content'), 'bench-pkg', '1.0.0')
  await rm(join(CACHE, 'content'), { recursive: true, force: true })
  await writeFile(rootFile, root.toString())
  return { store: join(CACHE, 'node', 'store'), root: root.toString() }
}

async function start (name: string, args: string[], nodeArgs: string[] = []): Promise<ChildPeer & { helia?: string[] }> {
  const p = new ChildPeer(name, SCRIPT, args, nodeArgs)
  await p.ready(120_000)
  const ready = p.events.find(e => e.event === 'ready')!
  return Object.assign(p, { helia: ready.helia as string[] | undefined })
}

interface Result { bytes: number, blocks?: number, ms: number, sources?: Array<{ peer: string, bytes: number }>, error?: string }

async function run (fetcher: ChildPeer, msg: Record<string, unknown>): Promise<Result> {
  const reply = fetcher.next(e => e.event === 'result', 600_000, `${String(msg.cmd)} result`)
  fetcher.send(JSON.stringify(msg))
  const r = await reply as Result
  if (r.error !== undefined) throw new Error(`${String(msg.cmd)}: ${r.error}`)
  return r
}

/** Only the fetches into the store (one provider, or four), for a CPU profile of the fetcher. */
async function profileRuns (fetcher: ChildPeer, p1: ChildPeer): Promise<void> {
  const providers = [p1]
  if (process.env.SWARMPACK_BENCH_PROFILE_FOUR === '1') {
    const more = await Promise.all([2, 3, 4].map(async i => start(`provider-${i}`, ['--role', 'provider', '--store', store, '--root', root, '--bootstrap', p1.multiaddrs[0]])))
    children.push(...more)
    providers.push(...more)
  }
  const peers = providers.map(p => p.multiaddrs[0])
  await run(fetcher, { cmd: 'ours', sink: 'store', root, peers })
  const cpu0 = cpuSeconds(fetcher)
  const t0 = Date.now()
  const rates: number[] = []
  for (let i = 0; i < REPEATS; i++) rates.push(mibps(await run(fetcher, { cmd: 'ours', sink: 'store', root, peers })))
  const cpu = cpuSeconds(fetcher) - cpu0
  const wall = (Date.now() - t0) / 1000
  console.log(`profiled ${REPEATS} fetches into the store from ${providers.length} provider(s): ${rates.map(r => r.toFixed(1)).join(', ')} MiB/s; fetcher CPU ${cpu.toFixed(2)} s over ${wall.toFixed(1)} s wall (${(100 * cpu / wall).toFixed(0)} % of one core); load ${loadavg()[0].toFixed(2)}`)
  await stopAll(children)
}

const { store, root } = await fixture()
const children: ChildPeer[] = []
try {
  const p1 = await start('provider-1', ['--role', 'provider', '--store', store, '--root', root])
  children.push(p1)
  const fetcher = await start('fetcher', ['--role', 'fetcher', '--bootstrap', p1.multiaddrs[0]], CPU_PROF !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${resolve(CPU_PROF)}`] : [])
  children.push(fetcher)
  if (CPU_PROF !== undefined) {
    await profileRuns(fetcher, p1)
    process.exit(0)
  }
  console.log(`${MIB} MiB package, ${String(p1.events[0].blocks)} blocks; one provider, one fetcher, separate processes; ${REPEATS} repeats\n`)

  const rows: Record<'raw' | 'ours' | 'oursMem' | 'helia' | 'heliaMem', number[]> = { raw: [], ours: [], oursMem: [], helia: [], heliaMem: [] }
  // CPU per fetch into the store (issue #15: CPU per MB delivered), both processes
  const cpu: { fetcher: number[], provider: number[] } = { fetcher: [], provider: [] }
  // warm the connection and code paths once, unmeasured
  await run(fetcher, { cmd: 'raw', root, peers: p1.multiaddrs })
  for (let i = 0; i < REPEATS; i++) {
    const raw = await run(fetcher, { cmd: 'raw', root, peers: p1.multiaddrs })
    const cpu0 = [cpuSeconds(fetcher), cpuSeconds(p1)]
    const ours = await run(fetcher, { cmd: 'ours', sink: 'store', root, peers: p1.multiaddrs })
    cpu.fetcher.push(cpuSeconds(fetcher) - cpu0[0])
    cpu.provider.push(cpuSeconds(p1) - cpu0[1])
    const oursMem = await run(fetcher, { cmd: 'ours', sink: 'memory', root, peers: p1.multiaddrs })
    const helia = await run(fetcher, { cmd: 'helia', sink: 'store', root, peers: p1.multiaddrs, helia: p1.helia![0] })
    const heliaMem = await run(fetcher, { cmd: 'helia', sink: 'memory', root, peers: p1.multiaddrs, helia: p1.helia![0] })
    rows.raw.push(mibps(raw)); rows.ours.push(mibps(ours)); rows.oursMem.push(mibps(oursMem)); rows.helia.push(mibps(helia)); rows.heliaMem.push(mibps(heliaMem))
    console.log(`  run ${i + 1}: raw stream ${mibps(raw).toFixed(1)} | swarmpack into store ${mibps(ours).toFixed(1)}, into memory ${mibps(oursMem).toFixed(1)} | Helia into blockstore-fs ${mibps(helia).toFixed(1)}, into memory ${mibps(heliaMem).toFixed(1)} MiB/s; load ${loadavg()[0].toFixed(2)}`)
  }
  const raw = median(rows.raw)
  const ours = median(rows.ours)
  const oursMem = median(rows.oursMem)
  const helia = median(rows.helia)
  const heliaMem = median(rows.heliaMem)
  console.log(`\n| one provider (median of ${REPEATS}) | MiB/s | vs raw stream from memory | vs Helia into blockstore-fs |`)
  console.log('|---|---|---|---|')
  console.log(`| raw libp2p stream, bytes from memory | ${raw.toFixed(1)} | 1x | |`)
  console.log(`| swarmpack into FsBlockstore (durable) | ${ours.toFixed(1)} | ${(ours / raw).toFixed(2)}x | ${(ours / helia).toFixed(2)}x |`)
  console.log(`| swarmpack into memory | ${oursMem.toFixed(1)} | ${(oursMem / raw).toFixed(2)}x | |`)
  console.log(`| Helia 7 bitswap into blockstore-fs | ${helia.toFixed(1)} | ${(helia / raw).toFixed(2)}x | 1x |`)
  console.log(`| Helia 7 bitswap into memory | ${heliaMem.toFixed(1)} | ${(heliaMem / raw).toFixed(2)}x | |`)
  const mb = MIB * 1.048576
  const [cpuF, cpuP] = [median(cpu.fetcher), median(cpu.provider)]
  console.log(`CPU per fetch into the store (median of ${REPEATS}, user+system): fetcher ${cpuF.toFixed(2)} s, provider ${cpuP.toFixed(2)} s; ${((cpuF + cpuP) / mb).toFixed(4)} CPU-s per MB delivered`)
  console.log(`targets: into the store >= 0.35x raw: ${ours / raw >= 0.35 ? 'met' : 'MISSED'}; >= 3x Helia into blockstore-fs: ${ours / helia >= 3 ? 'met' : 'MISSED'}`)

  // four providers: the same store served by three more processes
  const more = await Promise.all([2, 3, 4].map(async i => start(`provider-${i}`, ['--role', 'provider', '--store', store, '--root', root, '--bootstrap', p1.multiaddrs[0]])))
  children.push(...more)
  const providers = [p1, ...more]
  const names = new Map(providers.map((p, i) => [p.peerId, `provider-${i + 1}`]))
  const four: number[] = []
  const shares: Array<Record<string, number>> = []
  for (let i = 0; i < REPEATS; i++) {
    const r = await run(fetcher, { cmd: 'ours', sink: 'store', root, peers: providers.map(p => p.multiaddrs[0]) })
    four.push(mibps(r))
    const share: Record<string, number> = {}
    for (const s of r.sources ?? []) share[names.get(s.peer) ?? s.peer] = s.bytes / r.bytes
    shares.push(share)
    console.log(`  four providers, run ${i + 1}: ${mibps(r).toFixed(1)} MiB/s; share ${Object.entries(share).map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`).join(', ')}`)
  }
  const fourMedian = median(four)
  console.log('\n| four providers into the store (median) | MiB/s | vs one provider into the store |')
  console.log('|---|---|---|')
  console.log(`| swarmpack | ${fourMedian.toFixed(1)} | ${(fourMedian / ours).toFixed(2)}x |`)
  const avgShare = (n: string): number => shares.reduce((a, s) => a + (s[n] ?? 0), 0) / shares.length
  console.log(`share served (mean of runs): ${[...names.values()].map(n => `${n} ${(avgShare(n) * 100).toFixed(1)}%`).join(', ')}`)
  console.log(`target: four providers at least as fast as one: ${fourMedian >= ours * 0.98 ? 'met' : 'MISSED'}`)
} finally {
  await stopAll(children)
}
process.exit(0)
