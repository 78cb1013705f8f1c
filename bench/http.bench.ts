/**
 * HTTP provider throughput: a 100 MiB package (core's pack, exported as a static mirror) fetched
 * block by block from nginx with HttpProvider.getDag, against curl downloading the same bytes as
 * one file from the same nginx, in the same run. Also: the same package from our gateway server
 * (one CAR request). Prints medians of RUNS runs, the ratio to curl, requests per package and
 * peak memory.
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
import type { CID } from 'multiformats/cid'
import { NGINX, startNginx } from '../packages/http-provider/test/helpers/nginx.js'

const MIB = 1024 * 1024
const SIZE_MIB = Number(process.env.SWARMPACK_BENCH_MIB ?? 100)
const RUNS = Number(process.env.SWARMPACK_BENCH_RUNS ?? 5)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

/** Samples RSS while `fn` runs; returns its duration and the peak RSS above the starting point. */
async function measure (fn: () => Promise<number>): Promise<{ ms: number, bytes: number, peakRss: number }> {
  gc()
  const base = process.memoryUsage().rss
  let peak = base
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 5)
  const started = performance.now()
  const bytes = await fn()
  const ms = performance.now() - started
  clearInterval(timer)
  peak = Math.max(peak, process.memoryUsage().rss)
  return { ms, bytes, peakRss: peak - base }
}

async function fetchDag (url: string, root: CID): Promise<{ bytes: number, requests: number }> {
  const p = new HttpProvider({ mirrors: [url] })
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
  const tmp = await mkdtemp(join(tmpdir(), 'swarmpack-bench-http-'))
  try {
    const src = join(tmp, 'src')
    await mkdir(src)
    const file = join(src, 'payload.bin')
    await writeFile(file, randomBytes(SIZE_MIB * MIB))
    const store = await FsBlockstore.open(join(tmp, 'store'), { fsync: false })
    const packed = await pack(src, { name: 'bench-http', version: '1.0.0' }, { blockstore: store })
    const mirrorDir = join(tmp, 'mirror')
    const report = await exportHttpMirror(store, [packed.root], mirrorDir, { fsync: false })
    // The same bytes as one file, served by the same nginx.
    await copyFile(file, join(mirrorDir, 'ipfs', 'whole-file.bin'))
    const nginx = await startNginx(mirrorDir)
    if (nginx === undefined) throw new Error('nginx did not start')
    const gw = await startGatewayServer({ blockstore: store })
    console.log(`package: ${(report.bytes / MIB).toFixed(1)} MiB in ${report.blocks} blocks (mean ${(report.bytes / report.blocks / 1024).toFixed(0)} KiB); ${RUNS} runs each`)
    const rows: Record<string, { mibs: number[], peak: number[], requests: number }> = {
      'curl, one file (nginx)': { mibs: [], peak: [], requests: 1 },
      'HttpProvider.getDag, raw blocks (nginx)': { mibs: [], peak: [], requests: 0 },
      'HttpProvider.getDag, one CAR (our gateway)': { mibs: [], peak: [], requests: 0 }
    }
    try {
      // Warm the page cache and both servers once.
      spawnSync('curl', ['-s', '-o', '/dev/null', `${nginx.url}ipfs/whole-file.bin`])
      await fetchDag(nginx.url, packed.root)
      for (let run = 0; run < RUNS; run++) {
        const c = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `${nginx.url}ipfs/whole-file.bin`], { encoding: 'utf8' })
        const [size, secs] = c.stdout.trim().split(' ').map(Number)
        rows['curl, one file (nginx)'].mibs.push(size / MIB / secs)
        for (const [name, url] of [['HttpProvider.getDag, raw blocks (nginx)', nginx.url], ['HttpProvider.getDag, one CAR (our gateway)', gw.url]] as const) {
          let requests = 0
          const m = await measure(async () => { const r = await fetchDag(url, packed.root); requests = r.requests; return r.bytes })
          if (m.bytes !== report.bytes) throw new Error(`${name}: got ${m.bytes} bytes, expected ${report.bytes}`)
          rows[name].mibs.push(m.bytes / MIB / (m.ms / 1000))
          rows[name].peak.push(m.peakRss)
          rows[name].requests = requests
        }
      }
    } finally {
      await gw.close()
      await nginx.close()
      await store.close()
    }
    const curlMedian = median(rows['curl, one file (nginx)'].mibs)
    console.log('\n| case | median MiB/s | vs curl | requests/package | peak RSS growth |')
    console.log('|---|---:|---:|---:|---:|')
    for (const [name, r] of Object.entries(rows)) {
      const mibs = median(r.mibs)
      const peak = r.peak.length > 0 ? `${(Math.max(...r.peak) / MIB).toFixed(0)} MiB` : '-'
      console.log(`| ${name} | ${mibs.toFixed(0)} | ${(mibs / curlMedian * 100).toFixed(0)}% | ${r.requests} | ${peak} |`)
    }
    console.log(`\nall runs (MiB/s): ${Object.entries(rows).map(([n, r]) => `${n}: ${r.mibs.map(x => x.toFixed(0)).join(', ')}`).join('; ')}`)
    const ratio = median(rows['HttpProvider.getDag, raw blocks (nginx)'].mibs) / curlMedian
    console.log(`target >= 70% of curl: ${ratio >= 0.7 ? 'met' : 'NOT met'} (${(ratio * 100).toFixed(0)}%)`)
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), err => { console.error(err); process.exit(1) })
