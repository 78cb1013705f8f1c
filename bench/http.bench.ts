/**
 * HTTP provider throughput: a 100 MiB package (core's pack, exported as a static mirror with its
 * package CAR) fetched from nginx with HttpProvider.getDag, against baselines from the same nginx in
 * the same run: undici reading the same CAR file and discarding it (the floor for a Node client),
 * and curl downloading the payload as one file. Cases: the static package CAR (one request) into a
 * no-op sink and into an on-disk FsBlockstore (durable, 512 puts in flight, as a fetcher stores),
 * each with the blocks hashed on the calling thread and in core's SHA-256 worker (`hashWorker`),
 * raw blocks only (one request per block), and our gateway server over the node's store (one CAR
 * request). Prints medians of RUNS runs, the ratios, requests per package and peak memory, and
 * what `hashWorker: 'auto'` (the default) picks at the load of the run.
 *
 *   npm run bench -- http        (SWARMPACK_BENCH_MIB=100 SWARMPACK_BENCH_RUNS=5 by default)
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsBlockstore, pack } from '@swarmpack/core'
import { HttpProvider, exportHttpMirror, hashWorkerPays, startGatewayServer } from '@swarmpack/http-provider'
import { Agent, request } from 'undici'
import type { CID } from 'multiformats/cid'
import { NGINX, startNginx } from '../packages/http-provider/test/helpers/nginx.js'

const MIB = 1024 * 1024
const SIZE_MIB = Number(process.env.SWARMPACK_BENCH_MIB ?? 100)
const RUNS = Number(process.env.SWARMPACK_BENCH_RUNS ?? 5)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

/** Samples RSS while `fn` runs; returns its duration and the peak RSS above the starting point. */
async function measure (fn: () => Promise<number>): Promise<{ ms: number, cpuMs: number, bytes: number, peakRss: number }> {
  gc()
  const cpu0 = process.cpuUsage()
  const base = process.memoryUsage().rss
  let peak = base
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 5)
  const started = performance.now()
  const bytes = await fn()
  const ms = performance.now() - started
  clearInterval(timer)
  peak = Math.max(peak, process.memoryUsage().rss)
  const cpu = process.cpuUsage(cpu0)
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, bytes, peakRss: peak - base }
}

/** getDag into nothing, or into `store` with up to 512 puts in flight (each verified block put as received). */
async function fetchDag (url: string, root: CID, car = true, store?: FsBlockstore, hashWorker: boolean | 'auto' = 'auto'): Promise<{ bytes: number, requests: number }> {
  const p = new HttpProvider({ mirrors: [{ url, car }], hashWorker })
  let bytes = 0
  const inflight: Array<Promise<unknown>> = []
  try {
    for await (const b of p.getDag(root)) {
      bytes += b.bytes.byteLength
      if (store === undefined) continue
      inflight.push(store.put(b.cid, b.bytes))
      if (inflight.length >= 512) await inflight.shift()
    }
    await Promise.all(inflight)
    return { bytes, requests: p.stats().requests }
  } finally {
    await p.close()
  }
}

async function main (): Promise<void> {
  if (NGINX === undefined) { console.log('nginx is not installed (apt-get install -y nginx-light): skipping'); return }
  const curl = spawnSync('curl', ['--version'])
  if (curl.status !== 0) { console.log('curl is not installed: skipping'); return }
  const loadStart = (await import('node:os')).loadavg().map(x => x.toFixed(1)).join(' ')
  const tmp = await mkdtemp(join(tmpdir(), 'swarmpack-bench-http-'))
  try {
    const src = join(tmp, 'src')
    await mkdir(src)
    const file = join(src, 'payload.bin')
    await writeFile(file, randomBytes(SIZE_MIB * MIB))
    const store = await FsBlockstore.open(join(tmp, 'store'), { fsync: false })
    const packed = await pack(src, { name: 'bench-http', version: '1.0.0' }, { blockstore: store })
    const mirrorDir = join(tmp, 'mirror')
    const report = await exportHttpMirror(store, [packed.root], mirrorDir, { fsync: false, cars: true })
    // The same bytes as one file, served by the same nginx.
    await copyFile(file, join(mirrorDir, 'ipfs', 'wholefile'))
    const nginx = await startNginx(mirrorDir)
    if (nginx === undefined) throw new Error('nginx did not start')
    const gw = await startGatewayServer({ blockstore: store })
    console.log(`package: ${(report.bytes / MIB).toFixed(1)} MiB in ${report.blocks} blocks (mean ${(report.bytes / report.blocks / 1024).toFixed(0)} KiB); ${RUNS} runs each`)
    const CAR_NGINX = 'HttpProvider.getDag, package CAR (nginx), no-op sink, hashed on the calling thread'
    const CAR_NGINX_W = 'HttpProvider.getDag, package CAR (nginx), no-op sink, hash worker'
    const CAR_STORE = 'HttpProvider.getDag, package CAR (nginx), into FsBlockstore (durable), hashed on the calling thread'
    const CAR_STORE_W = 'HttpProvider.getDag, package CAR (nginx), into FsBlockstore (durable), hash worker'
    const UNDICI = 'undici.request, the same CAR file, bytes discarded (nginx)'
    // the package CAR file itself, through the mirror's ?format=car rewrite (car/ is internal in nginx)
    const carUrl = `${nginx.url}ipfs/${packed.root.toV1().toString()}?format=car&dag-scope=all`
    const RAW_NGINX = 'HttpProvider.getDag, raw blocks only (nginx)'
    const CAR_GW = 'HttpProvider.getDag, CAR from our gateway server'
    const rows: Record<string, { mibs: number[], peak: number[], cpu: number[], requests: number }> = {
      'curl, one file (nginx)': { mibs: [], peak: [], cpu: [], requests: 1 },
      [UNDICI]: { mibs: [], peak: [], cpu: [], requests: 1 },
      [CAR_NGINX]: { mibs: [], peak: [], cpu: [], requests: 0 },
      [CAR_NGINX_W]: { mibs: [], peak: [], cpu: [], requests: 0 },
      [CAR_STORE]: { mibs: [], peak: [], cpu: [], requests: 0 },
      [CAR_STORE_W]: { mibs: [], peak: [], cpu: [], requests: 0 },
      [RAW_NGINX]: { mibs: [], peak: [], cpu: [], requests: 0 },
      [CAR_GW]: { mibs: [], peak: [], cpu: [], requests: 0 }
    }
    try {
      // Warm the page cache, both servers and the JIT once per case.
      spawnSync('curl', ['-s', '-o', '/dev/null', `${nginx.url}ipfs/wholefile`])
      await fetchDag(nginx.url, packed.root, true, undefined, false)
      await fetchDag(nginx.url, packed.root, true, undefined, true)
      await fetchDag(nginx.url, packed.root, false)
      await fetchDag(gw.url, packed.root)
      for (let run = 0; run < RUNS; run++) {
        const c = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `${nginx.url}ipfs/wholefile`], { encoding: 'utf8' })
        const [size, secs] = c.stdout.trim().split(' ').map(Number)
        rows['curl, one file (nginx)'].mibs.push(size / MIB / secs)
        // The floor for any Node HTTP client on this machine: the same file, read and thrown away.
        const agent = new Agent()
        const u = await measure(async () => {
          const res = await request(carUrl, { dispatcher: agent })
          let n = 0
          for await (const chunk of res.body) n += (chunk as Uint8Array).byteLength
          return n
        })
        await agent.close()
        rows[UNDICI].mibs.push(u.bytes / MIB / (u.ms / 1000))
        rows[UNDICI].cpu.push(u.cpuMs)
        const cases = [
          [CAR_NGINX, nginx.url, true, false], [CAR_NGINX_W, nginx.url, true, true], [CAR_STORE, nginx.url, true, false],
          [CAR_STORE_W, nginx.url, true, true], [RAW_NGINX, nginx.url, false, 'auto'], [CAR_GW, gw.url, true, 'auto']
        ] as const
        for (const [name, url, car, hashWorker] of cases) {
          let requests = 0
          const sink = name === CAR_STORE || name === CAR_STORE_W ? await FsBlockstore.open(join(tmp, `sink-${run}`)) : undefined
          const m = await measure(async () => { const r = await fetchDag(url, packed.root, car, sink, hashWorker); requests = r.requests; return r.bytes })
          if (sink !== undefined) { await sink.close(); await rm(join(tmp, `sink-${run}`), { recursive: true, force: true }) }
          if (m.bytes !== report.bytes) throw new Error(`${name}: got ${m.bytes} bytes, expected ${report.bytes}`)
          rows[name].mibs.push(m.bytes / MIB / (m.ms / 1000))
          rows[name].peak.push(m.peakRss)
          rows[name].cpu.push(m.cpuMs)
          rows[name].requests = requests
        }
      }
    } finally {
      await gw.close()
      await nginx.close()
      await store.close()
    }
    const curlMedian = median(rows['curl, one file (nginx)'].mibs)
    const undiciMedian = median(rows[UNDICI].mibs)
    console.log('\n| case | median MiB/s | vs undici, same CAR | vs curl | requests/package | peak RSS growth | client CPU ms/package |')
    console.log('|---|---:|---:|---:|---:|---:|---:|')
    if (undiciMedian * 1024 * 1024 * 10 < 1) throw new Error('the undici baseline read nothing: wrong CAR URL?')
    for (const [name, r] of Object.entries(rows)) {
      const mibs = median(r.mibs)
      const peak = r.peak.length > 0 ? `${(Math.max(...r.peak) / MIB).toFixed(0)} MiB` : '-'
      const cpu = r.cpu.length > 0 ? median(r.cpu).toFixed(0) : '-'
      console.log(`| ${name} | ${mibs.toFixed(0)} | ${(mibs / undiciMedian).toFixed(2)}x | ${(mibs / curlMedian).toFixed(2)}x | ${r.requests} | ${peak} | ${cpu} |`)
    }
    console.log(`\nall runs (MiB/s): ${Object.entries(rows).map(([n, r]) => `${n}: ${r.mibs.map(x => x.toFixed(0)).join(', ')}`).join('; ')}`)
    for (const name of [CAR_STORE, CAR_STORE_W]) {
      const ratio = median(rows[name].mibs) / undiciMedian
      console.log(`target: package CAR into the store >= 0.5x undici reading the CAR, ${name.split(', ').pop() as string}: ${ratio >= 0.5 ? 'met' : 'MISSED'} (${ratio.toFixed(2)}x)`)
    }
    console.log(`hashWorker 'auto' (the default) at this load: ${hashWorkerPays(report.bytes) ? 'hash worker' : 'calling thread'}`)
    console.log(`load average at the start: ${loadStart}; at the end: ${(await import('node:os')).loadavg().map(x => x.toFixed(1)).join(' ')}`)
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), err => { console.error(err); process.exit(1) })
