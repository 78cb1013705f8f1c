/**
 * pack/unpack benchmark:
 *  (a) pack throughput (read + chunk + hash + store) as a ratio of node:crypto SHA-256 throughput
 *      measured in the same run (a child process on dist/); into a no-op store, MemoryBlockstore and
 *      the on-disk FsBlockstore, chunking and hashing on the calling thread and in the chunk worker;
 *  (b) update efficiency through pack: blocks new in v2 as a share of v2's size, for the generated
 *      100 MiB tree (1.5 % changed in ten files) and typescript 5.8.2 -> 5.8.3, next to fixed-size
 *      256 KiB chunking of the same trees;
 *  (c) peak resident memory of a child process packing and unpacking a 1 GiB generated tree;
 *  (d) pack of small to medium trees on the calling thread vs the chunk worker (the threshold).
 * Trees are generated under os.tmpdir() and deleted afterwards.
 *
 *   npm run bench -- pack
 *   SWARMPACK_BENCH_PARTS=c npm run bench -- pack      (only some parts: any of a, b, c, d)
 *   SWARMPACK_BENCH_REPEATS=5 npm run bench -- pack    (runs per figure in (a) and (c); default 3)
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { WORKER_THRESHOLD, listManifestCids, pack, storeProvider } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'
import { MiB, editTree, fmt, median, npmReleases, readTree, treeSize, updateTree, writeBigTree, writeTree } from './tree-core-content.js'
import type { TreeFile } from './tree-core-content.js'

const REPEATS = Number(process.env.SWARMPACK_BENCH_REPEATS ?? 3)
const here = resolve(fileURLToPath(import.meta.url), '..')
const work = await mkdtemp(join(tmpdir(), 'swarmpack-bench-pack-'))
const meta = { name: 'bench', version: '1.0.0' }
const parts = process.env.SWARMPACK_BENCH_PARTS ?? 'abcd'

let built = false
/** The children run plain JavaScript on the compiled package, as a host app does. */
function buildCore (): void {
  if (built) return
  execFileSync(process.execPath, [join(here, '../node_modules/typescript/bin/tsc'), '-b', join(here, '../packages/core')], { stdio: 'inherit' })
  built = true
}

/** Runs pack-rate-core-content.mjs and returns its JSON. */
function child (args: string[]): Record<string, unknown> {
  const out = execFileSync(process.execPath, [join(here, 'pack-rate-core-content.mjs'), ...args], { encoding: 'utf8', maxBuffer: 16 * MiB })
  return JSON.parse(out.trim().split('\n').pop() as string)
}

try {
  // --- (c) peak memory (first, while this parent process is still small) -----------------------
  if (parts.includes('c')) {
  // The children run plain JavaScript on the compiled package, as a host app does (the TypeScript
  // loader alone adds ~30 MiB), so build packages/core first.
  buildCore()
  const child = (args: string[]): Record<string, number | string> => {
    const out = execFileSync(process.execPath, [join(here, 'memory-core-content.mjs'), ...args], { encoding: 'utf8' })
    return JSON.parse(out.trim().split('\n').pop() as string)
  }
  const big = join(work, 'big')
  await writeBigTree(big, 1024 * MiB, 11)
  const mem: Record<string, number[]> = { idle: [], pack: [], unpack: [], packRate: [], unpackRate: [], idleHwm: [], packHwm: [], unpackHwm: [], packAnon: [], packFile: [], unpackAnon: [], unpackFile: [], threadHwm: [], threadAnon: [], threadFile: [], threadRate: [] }
  for (let r = 0; r < REPEATS; r++) {
    const storeDir = join(work, 'big-store'); const target = join(work, 'big-out')
    const i = child(['idle'])
    mem.idle.push(i.maxRssMiB as number); mem.idleHwm.push(i.vmHwmMiB as number)
    const p = child(['pack', big, storeDir])
    mem.pack.push(p.maxRssMiB as number); mem.packHwm.push(p.vmHwmMiB as number); mem.packRate.push(1024 / ((p.ms as number) / 1000))
    mem.packAnon.push(p.rssAnonPeakMiB as number); mem.packFile.push(p.rssFilePeakMiB as number)
    const u = child(['unpack', p.root as string, storeDir, target])
    mem.unpack.push(u.maxRssMiB as number); mem.unpackHwm.push(u.vmHwmMiB as number); mem.unpackRate.push(1024 / ((u.ms as number) / 1000))
    mem.unpackAnon.push(u.rssAnonPeakMiB as number); mem.unpackFile.push(u.rssFilePeakMiB as number)
    await rm(target, { recursive: true, force: true })
    await rm(storeDir, { recursive: true, force: true })
    // the same pack with chunking and hashing on the calling thread (the default above uses the worker)
    const t = child(['pack', big, storeDir, '0'])
    mem.threadHwm.push(t.vmHwmMiB as number); mem.threadRate.push(1024 / ((t.ms as number) / 1000))
    mem.threadAnon.push(t.rssAnonPeakMiB as number); mem.threadFile.push(t.rssFilePeakMiB as number)
    await rm(storeDir, { recursive: true, force: true })
  }
  await rm(big, { recursive: true, force: true })
  console.log(`(c) peak resident memory, 1 GiB tree, child process, FsBlockstore (fsync off), median of ${REPEATS}:`)
  console.log('    (maxRSS = process.resourceUsage().maxRSS; VmHWM = /proc/self/status, the child\'s own peak)')
  console.log(`    node + @swarmpack/core (dist) idle   maxRSS ${fmt(median(mem.idle), 0)} MiB  VmHWM ${fmt(median(mem.idleHwm), 0)} MiB`)
  // every run too: the peak depends on when V8's major GC comes, so one run can differ from the median
  const runs = (xs: number[]): string => `runs ${xs.map(x => fmt(x, 0)).join(', ')}`
  console.log(`    pack                                maxRSS ${fmt(median(mem.pack), 0)} MiB  VmHWM ${fmt(median(mem.packHwm), 0)} MiB  (private ${fmt(median(mem.packAnon), 0)} + file-backed ${fmt(median(mem.packFile), 0)})   (${fmt(median(mem.packRate), 0)} MiB/s)  ${runs(mem.packHwm)}`)
  console.log(`    pack, calling thread (workers: 0)   VmHWM ${fmt(median(mem.threadHwm), 0)} MiB  (private ${fmt(median(mem.threadAnon), 0)} + file-backed ${fmt(median(mem.threadFile), 0)})   (${fmt(median(mem.threadRate), 0)} MiB/s)  ${runs(mem.threadHwm)}`)
  console.log(`    unpack                              maxRSS ${fmt(median(mem.unpack), 0)} MiB  VmHWM ${fmt(median(mem.unpackHwm), 0)} MiB  (private ${fmt(median(mem.unpackAnon), 0)} + file-backed ${fmt(median(mem.unpackFile), 0)})   (${fmt(median(mem.unpackRate), 0)} MiB/s)  ${runs(mem.unpackHwm)}`)
  const limit = 200e6 / MiB
  const worst = Math.max(...mem.packHwm, ...mem.threadHwm, ...mem.unpackHwm)
  console.log(`    target < 200 MB = ${fmt(limit, 1)} MiB (VmHWM, every run): ${worst < limit ? 'met' : 'MISSED'} (highest ${fmt(worst, 0)} MiB); load average ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
  console.log('    (file-backed: code and the store\'s LMDB memory map, page cache the kernel reclaims under pressure)')
  console.log('')
  }

  // --- (a) throughput, calling thread vs chunk worker ---------------------------------------
  if (parts.includes('a')) {
  const SIZE = 256 * MiB
  const tree = join(work, 'throughput')
  await writeBigTree(tree, SIZE, 3)
  buildCore()
  const rows = child(['throughput', tree, work, String(REPEATS), String(SIZE / MiB)]) as Record<string, Array<[number, number, number, number]>>
  await rm(tree, { recursive: true, force: true })
  const wall = (k: string): number => median(rows[k].map(x => x[0]))
  const cpu = (k: string): number => median(rows[k].map(x => x[1]))
  const perThread = (k: string): string => `${fmt(median(rows[k].map(x => x[2])), 2)} / ${fmt(median(rows[k].map(x => x[3])), 2)}`
  const sha = wall('sha')
  console.log(`(a) pack throughput, 256 MiB tree (4 x 64 MiB files and small ones, page-cached), median of ${REPEATS}, one child process on dist/.`)
  console.log('    wall MiB/s (ratio to sha256) | MiB per CPU-second of the process, all threads (ratio) | CPU ms per MiB: main thread / busiest other thread')
  console.log(`    node:crypto sha256 (in memory)                   ${fmt(sha, 0).padStart(5)}        | ${fmt(cpu('sha'), 0).padStart(5)}        | ${perThread('sha')}`)
  for (const [k, label] of [['noop', 'no-op store'], ['memory', 'MemoryBlockstore'], ['fs', 'FsBlockstore (durable)'], ['fsNoSync', 'FsBlockstore (fsync off)']]) {
    for (const p of ['thread', 'worker']) {
      const key = `${k}-${p}`
      console.log(`    pack -> ${`${label}, ${p === 'thread' ? 'calling thread' : 'chunk worker'}`.padEnd(40)} ${fmt(wall(key), 0).padStart(5)} (${fmt(wall(key) / sha, 2)}) | ${fmt(cpu(key), 0).padStart(5)} (${fmt(cpu(key) / cpu('sha'), 2)}) | ${perThread(key)} | runs ${rows[key].map(x => fmt(x[0], 0)).join(', ')}`)
    }
  }
  for (const p of ['thread', 'worker']) {
    const fs = wall(`fs-${p}`)
    console.log(`    ${p === 'thread' ? 'calling thread' : 'chunk worker'}: into the durable store ${fmt(fs / sha, 2)}x SHA-256 (target >= 0.2: ${fs / sha >= 0.2 ? 'met' : 'MISSED'}), ${fmt(fs / wall(`memory-${p}`), 2)}x into memory (target >= 0.8: ${fs / wall(`memory-${p}`) >= 0.8 ? 'met' : 'MISSED'})`)
  }
  console.log(`    worker vs calling thread: durable store ${fmt(wall('fs-worker') / wall('fs-thread'), 2)}x, memory ${fmt(wall('memory-worker') / wall('memory-thread'), 2)}x, no-op ${fmt(wall('noop-worker') / wall('noop-thread'), 2)}x; load average ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
  console.log('')
  }

  // --- (d) where the chunk worker starts to pay ----------------------------------------------
  if (parts.includes('d')) {
  buildCore()
  const sizes = [4, 16, 32, 64, 128, 256]
  const rows = child(['threshold', join(work, 'threshold'), '5', ...sizes.map(String)]) as Record<string, Array<[number, number, number, number]>>
  await rm(join(work, 'threshold'), { recursive: true, force: true })
  const wall = (k: string): number => median(rows[k].map(x => x[0]))
  console.log('(d) pack into MemoryBlockstore, trees of 1 MiB files, calling thread vs chunk worker (started per pack), median of 5, wall MiB/s:')
  console.log(`    node:crypto sha256 ${fmt(wall('sha'), 0)}`)
  for (const mib of sizes) {
    const ms = (k: string): string => fmt(median(rows[k].map(x => x[2])), 2)
    console.log(`    ${String(mib).padStart(3)} MiB: calling thread ${fmt(wall(`${mib}-thread`), 0).padStart(5)}  worker ${fmt(wall(`${mib}-worker`), 0).padStart(5)}  (${fmt(wall(`${mib}-worker`) / wall(`${mib}-thread`), 2)}x)   main-thread CPU ms/MiB ${ms(`${mib}-thread`)} vs ${ms(`${mib}-worker`)}`)
  }
  console.log(`    (pack uses the worker once the files seen reach ${WORKER_THRESHOLD / MiB} MiB unless told otherwise); load average ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
  console.log('')
  }

  // --- (b) update efficiency through pack ---------------------------------------------------
  if (parts.includes('b')) {
  /** Packs v1 then v2 into one store; returns the share of v2 in blocks v1 did not have. */
  async function update (d1: string, d2: string): Promise<{ share: number, newBlocks: number, blocks: number, total: number }> {
    const store = new MemoryBlockstore()
    const provider = storeProvider(store)
    const r1 = await pack(d1, meta, { blockstore: store })
    const have = new Set((await listManifestCids(r1.root, provider)).map(String))
    const r2 = await pack(d2, { ...meta, version: '2.0.0' }, { blockstore: store })
    const sizes = new Map<string, number>()
    for (const e of r2.manifest.entries) if (e.type === 'file') for (const [cid, n] of e.chunks) sizes.set(cid.toString(), n)
    let newBytes = 0; let newBlocks = 0
    const all: CID[] = await listManifestCids(r2.root, provider)
    for (const cid of all) {
      if (have.has(cid.toString())) continue
      newBlocks++
      newBytes += sizes.get(cid.toString()) ?? (await provider.get(cid)).length
    }
    return { share: newBytes / r2.totalSize, newBlocks, blocks: all.length, total: r2.totalSize }
  }
  /** The same with fixed-size 256 KiB chunks (what a plain IPFS import does). */
  function fixed (v1: TreeFile[], v2: TreeFile[]): { share: number, newBlocks: number, blocks: number } {
    const set = (files: TreeFile[]): Map<string, number> => {
      const m = new Map<string, number>()
      for (const f of files) for (let o = 0; o < f.bytes.length; o += 256 * 1024) m.set(createHash('sha256').update(f.bytes.subarray(o, o + 256 * 1024)).digest('base64'), Math.min(256 * 1024, f.bytes.length - o))
      return m
    }
    const a = set(v1); const b = set(v2)
    let n = 0; let k = 0
    for (const [h, s] of b) if (!a.has(h)) { n += s; k++ }
    return { share: n / treeSize(v2), newBlocks: k, blocks: b.size }
  }
  const v1 = updateTree()
  const v2s = [777, 778, 779].map(seed => editTree(v1, 0.015, seed).files)
  const d1 = join(work, 'u1'); await writeTree(d1, v1)
  const gen: Array<{ share: number, newBlocks: number, blocks: number }> = []
  const genFixed: Array<{ share: number, newBlocks: number, blocks: number }> = []
  for (const [i, v2] of v2s.entries()) {
    const d2 = join(work, `u2-${i}`); await writeTree(d2, v2)
    gen.push(await update(d1, d2))
    genFixed.push(fixed(v1, v2))
    await rm(d2, { recursive: true, force: true })
  }
  await rm(d1, { recursive: true, force: true })
  const npm = await npmReleases()
  const ts = await update(npm.dirs[0], npm.dirs[1])
  const tsFixed = fixed(await readTree(npm.dirs[0]), await readTree(npm.dirs[1]))
  await rm(npm.base, { recursive: true, force: true })
  const med = (xs: Array<{ share: number, newBlocks: number, blocks: number }>): string =>
    `${fmt(100 * median(xs.map(x => x.share)), 2).padStart(6)} % new (${median(xs.map(x => x.newBlocks))} of ${median(xs.map(x => x.blocks))} blocks)`
  console.log('\n(b) update efficiency: bytes in blocks new in v2, as a share of v2 (manifest blocks included for pack)')
  console.log(`    generated 100 MiB, 1.5 % changed (median of 3 edit placements)`)
  console.log(`      CDC (pack)  ${med(gen)}`)
  console.log(`      fixed 256K  ${med(genFixed)}`)
  console.log(`    typescript 5.8.2 -> 5.8.3 (${fmt(ts.total / MiB)} MiB)`)
  console.log(`      CDC (pack)  ${med([ts])}`)
  console.log(`      fixed 256K  ${med([tsFixed])}`)
  }

} finally {
  await rm(work, { recursive: true, force: true })
}
