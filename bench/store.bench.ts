/**
 * Block store throughput: FsBlockstore.put / getBytes against raw file writes and reads of the same
 * blocks in the same run (the store adds a sha2-256 check, a temp file and a rename per block), with
 * and without fsync; plus the cost of opening a store of SWARMPACK_STORE_SCAN_BLOCKS small blocks,
 * per block, from the index snapshot of a clean close and by a full directory scan (after a crash).
 *
 *   npm run bench -- store
 *   SWARMPACK_STORE_MIB=256 SWARMPACK_STORE_BLOCK_KIB=256 npm run bench -- store
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsBlockstore, rawCid, type Block } from '@swarmpack/core'

const TOTAL_MIB = Number(process.env.SWARMPACK_STORE_MIB ?? 64)
const BLOCK_KIB = Number(process.env.SWARMPACK_STORE_BLOCK_KIB ?? 256)
const RUNS = Number(process.env.SWARMPACK_STORE_RUNS ?? 5)
const SCAN_BLOCKS = Number(process.env.SWARMPACK_STORE_SCAN_BLOCKS ?? 20_000)

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const mibs = (bytes: number, ms: number): number => bytes / 1024 / 1024 / (ms / 1000)

function makeBlocks (): Block[] {
  const n = Math.ceil(TOTAL_MIB * 1024 / BLOCK_KIB)
  return Array.from({ length: n }, () => {
    const bytes = new Uint8Array(randomBytes(BLOCK_KIB * 1024))
    return { cid: rawCid(bytes), bytes }
  })
}

/** The baseline: one plain file per block in a sharded tree, optionally fsynced, no hashing, no rename. */
async function rawWrite (dir: string, blocks: Block[], fsync: boolean): Promise<void> {
  const made = new Set<string>()
  for (const { cid, bytes } of blocks) {
    const name = cid.toString()
    const shard = join(dir, name.slice(-3, -1))
    if (!made.has(shard)) { await mkdir(shard, { recursive: true }); made.add(shard) }
    const fh = await open(join(shard, name), 'w')
    await fh.write(bytes)
    if (fsync) await fh.sync()
    await fh.close()
  }
}

async function rawRead (dir: string, blocks: Block[]): Promise<void> {
  for (const { cid } of blocks) {
    const name = cid.toString()
    await readFile(join(dir, name.slice(-3, -1), name))
  }
}

const root = await mkdtemp(join(tmpdir(), 'swarmpack-store-bench-'))
try {
  const blocks = makeBlocks()
  const total = blocks.length * BLOCK_KIB * 1024
  console.log(`${blocks.length} blocks of ${BLOCK_KIB} KiB (${TOTAL_MIB} MiB), ${RUNS} runs, in ${tmpdir()}`)
  const results: Record<string, number[]> = {}
  const add = (k: string, v: number): void => { (results[k] ??= []).push(v) }
  for (let run = 0; run < RUNS; run++) {
    for (const fsync of [false, true]) {
      const rawDir = join(root, `raw-${run}-${fsync}`)
      let t = performance.now()
      await rawWrite(rawDir, blocks, fsync)
      add(`raw write${fsync ? ' +fsync' : ''}`, mibs(total, performance.now() - t))

      const storeDir = join(root, `store-${run}-${fsync}`)
      const store = await FsBlockstore.open(storeDir, { fsync })
      t = performance.now()
      for (const b of blocks) await store.put(b.cid, b.bytes)
      add(`store put${fsync ? ' +fsync' : ''}`, mibs(total, performance.now() - t))
      await store.close()

      if (!fsync) {
        t = performance.now()
        await rawRead(rawDir, blocks)
        add('raw read', mibs(total, performance.now() - t))
        const reopened = await FsBlockstore.open(storeDir)
        t = performance.now()
        for (const b of blocks) await reopened.getBytes(b.cid)
        add('store getBytes', mibs(total, performance.now() - t))
        await reopened.close()
      }
      await rm(rawDir, { recursive: true, force: true })
      await rm(storeDir, { recursive: true, force: true })
      globalThis.gc?.()
    }
  }
  // open cost on a store with many small blocks: one readdir per shard, one stat per block
  const scanDir = join(root, 'scan')
  const scanStore = await FsBlockstore.open(scanDir, { fsync: false })
  for (let i = 0; i < SCAN_BLOCKS; i++) {
    const bytes = new Uint8Array(randomBytes(512))
    await scanStore.put(rawCid(bytes), bytes)
  }
  await scanStore.close()
  for (let run = 0; run < RUNS; run++) {
    // after a clean close the index snapshot is loaded; without one (a crash) every file is stat-ed
    let t = performance.now()
    const s = await FsBlockstore.open(scanDir)
    add('open (snapshot) µs/block', (performance.now() - t) * 1000 / SCAN_BLOCKS)
    await s.close()
    await rm(join(scanDir, 'index.snapshot'))
    t = performance.now()
    await (await FsBlockstore.open(scanDir)).close()
    add('open (scan) µs/block', (performance.now() - t) * 1000 / SCAN_BLOCKS)
  }
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]))
  const row = (name: string, unit: string, ratioTo?: string): void => {
    const ratio = ratioTo === undefined ? '' : `   ${(m[name] / m[ratioTo] * 100).toFixed(0)}% of ${ratioTo}`
    console.log(`${name.padEnd(22)} ${m[name].toFixed(1).padStart(8)} ${unit}${ratio}`)
  }
  console.log('\nmedians:')
  row('raw write', 'MiB/s')
  row('store put', 'MiB/s', 'raw write')
  row('raw write +fsync', 'MiB/s')
  row('store put +fsync', 'MiB/s', 'raw write +fsync')
  row('raw read', 'MiB/s')
  row('store getBytes', 'MiB/s', 'raw read')
  row('open (snapshot) µs/block', `µs (${SCAN_BLOCKS} blocks)`)
  row('open (scan) µs/block', `µs (${SCAN_BLOCKS} blocks)`)
} finally {
  await rm(root, { recursive: true, force: true })
}
