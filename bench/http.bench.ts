/**
 * HTTP provider throughput: a 100 MiB package (core's pack, exported as a static mirror with its
 * package CAR) fetched from nginx with HttpProvider.getDag, against curl downloading the same bytes
 * as one file from the same nginx, in the same run. Cases: the static package CAR (one request),
 * raw blocks only (one request per block), and our gateway server over the node's store (one CAR
 * request). Prints medians of RUNS runs, the ratio to curl, requests per package and peak memory.
 *
 *   npm run bench -- http        (SWARMPACK_BENCH_MIB=100 SWARMPACK_BENCH_RUNS=5 by default)
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsBlockstore, pack } from '@swarmpack/core'
import { HttpProvider, exportHttpMirror, startGatewayServer } from '@swarmpack/http-provider'
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

async function fetchDag (url: string, root: CID, car = true): Promise<{ bytes: number, requests: number }> {
  const p = new HttpProvider({ mirrors: [{ url, car }] })
  let bytes = 0
  try {
    for await (const b of p.getDag(root)) bytes += b.bytes.byteLength
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
    const CAR_NGINX = 'HttpProvider.getDag, package CAR (nginx)'
    const RAW_NGINX = 'HttpProvider.getDag, raw blocks only (nginx)'
    const CAR_GW = 'HttpProvider.getDag, CAR from our gateway server'
    const rows: Record<string, { mibs: number[], peak: number[], cpu: number[], requests: number }> = {
      'curl, one file (nginx)': { mibs: [], peak: [], cpu: [], requests: 1 },
      'undici.request, one file, bytes discarded (nginx)': { mibs: [], peak: [], cpu: [], requests: 1 },
      [CAR_NGINX]: { mibs: [], peak: [], cpu: [], requests: 0 },
      [RAW_NGINX]: { mibs: [], peak: [], cpu: [], requests: 0 },
      [CAR_GW]: { mibs: [], peak: [], cpu: [], requests: 0 }
    }
    try {
      // Warm the page cache, both servers and the JIT once per case.
      spawnSync('curl', ['-s', '-o', '/dev/null', `${nginx.url}ipfs/wholefile`])
      await fetchDag(nginx.url, packed.root)
      await fetchDag(nginx.url, packed.root, false)
      await fetchDag(gw.url, packed.root)
      for (let run = 0; run < RUNS; run++) {
        const c = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `${nginx.url}ipfs/wholefile`], { encoding: 'utf8' })
        const [size, secs] = c.stdout.trim().split(' ').map(Number)
        rows['curl, one file (nginx)'].mibs.push(size / MIB / secs)
        // The floor for any Node HTTP client on this machine: the same file, read and thrown away.
        const agent = new Agent()
        const u = await measure(async () => {
          const res = await request(`${nginx.url}ipfs/wholefile`, { dispatcher: agent })
          let n = 0
          for await (const chunk of res.body) n += (chunk as Uint8Array).byteLength
          return n
        })
        await agent.close()
        rows['undici.request, one file, bytes discarded (nginx)'].mibs.push(u.bytes / MIB / (u.ms / 1000))
        rows['undici.request, one file, bytes discarded (nginx)'].cpu.push(u.cpuMs)
        for (const [name, url, car] of [[CAR_NGINX, nginx.url, true], [RAW_NGINX, nginx.url, false], [CAR_GW, gw.url, true]] as const) {
          let requests = 0
          const m = await measure(async () => { const r = await fetchDag(url, packed.root, car); requests = r.requests; return r.bytes })
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
    console.log('\n| case | median MiB/s | vs curl | requests/package | peak RSS growth | client CPU ms/package |')
    console.log('|---|---:|---:|---:|---:|---:|')
    for (const [name, r] of Object.entries(rows)) {
      const mibs = median(r.mibs)
      const peak = r.peak.length > 0 ? `${(Math.max(...r.peak) / MIB).toFixed(0)} MiB` : '-'
      const cpu = r.cpu.length > 0 ? median(r.cpu).toFixed(0) : '-'
      console.log(`| ${name} | ${mibs.toFixed(0)} | ${(mibs / curlMedian * 100).toFixed(0)}% | ${r.requests} | ${peak} | ${cpu} |`)
    }
    console.log(`\nall runs (MiB/s): ${Object.entries(rows).map(([n, r]) => `${n}: ${r.mibs.map(x => x.toFixed(0)).join(', ')}`).join('; ')}`)
    const ratio = median(rows[CAR_NGINX].mibs) / curlMedian
    console.log(`target >= 70% of curl (package CAR from nginx): ${ratio >= 0.7 ? 'met' : 'NOT met'} (${(ratio * 100).toFixed(0)}%)`)
    console.log(`load average at the start: ${loadStart}; at the end: ${(await import('node:os')).loadavg().map(x => x.toFixed(1)).join(' ')}`)
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), err => { console.error(err); process.exit(1) })
