/**
 * Block store throughput, against node:crypto SHA-256 over the same bytes (the baseline, measured
 * in the same run), and the backends the store could be built on, each fed the same blocks:
 *
 *   - FsBlockstore (blocks in segment files, the index in LMDB through `lmdb`): durable puts with
 *     512 in flight (as pack issues them) of bytes the store must hash, and of bytes core already
 *     hashed (the receive paths: hash once), durable puts awaited one at a time (no batching
 *     possible: one sync each), puts with fsync off, getBytes (first read after reopening; then warm);
 *   - `lmdb` alone, blocks as values: async puts, one awaited flush (the previous store's backend);
 *   - a bare append-only segment file: all blocks appended, one fsync (the new store's backend
 *     without its index, headers and accounting);
 *   - one file per block, fsync each (the layout of swarmpack's first store).
 *
 * Plus the cost of opening a store of SWARMPACK_STORE_SCAN_BLOCKS small blocks (index load), per block.
 *
 *   npm run bench -- store
 *   SWARMPACK_STORE_MIB=100 SWARMPACK_STORE_BLOCK_KIB=16 npm run bench -- store
 */
import { createHash, hash as oneShot, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { open as openLmdb } from 'lmdb'
import { FsBlockstore, rawCid, type Block } from '@swarmpack/core'

const TOTAL_MIB = Number(process.env.SWARMPACK_STORE_MIB ?? 64)
const BLOCK_KIB = Number(process.env.SWARMPACK_STORE_BLOCK_KIB ?? 16)
const RUNS = Number(process.env.SWARMPACK_STORE_RUNS ?? 3)
const SCAN_BLOCKS = Number(process.env.SWARMPACK_STORE_SCAN_BLOCKS ?? 20_000)
const WINDOW = 512

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const mibs = (bytes: number, ms: number): number => bytes / 1024 / 1024 / (ms / 1000)
const sha256 = (b: Uint8Array): Buffer => typeof oneShot === 'function' ? oneShot('sha256', b, 'buffer') : createHash('sha256').update(b).digest()

function makeBlocks (): Block[] {
  const n = Math.ceil(TOTAL_MIB * 1024 / BLOCK_KIB)
  return Array.from({ length: n }, () => {
    const bytes = new Uint8Array(randomBytes(BLOCK_KIB * 1024))
    return { cid: rawCid(bytes), bytes }
  })
}

/** Fresh copies of the blocks, so the store cannot reuse the digests rawCid remembered (a put from the network hashes once). */
const fresh = (blocks: Block[]): Block[] => blocks.map(b => ({ cid: b.cid, bytes: new Uint8Array(b.bytes) }))

/** Runs `fn` over the blocks with at most WINDOW calls in flight. */
async function windowed (blocks: Block[], fn: (b: Block) => Promise<unknown>): Promise<void> {
  const inflight: Array<Promise<unknown>> = []
  for (const b of blocks) {
    inflight.push(fn(b))
    if (inflight.length >= WINDOW) await inflight.shift()
  }
  await Promise.all(inflight)
}

async function segmentLog (dir: string, blocks: Block[]): Promise<void> {
  await mkdir(dir, { recursive: true })
  const fh = await open(join(dir, 'segment'), 'w')
  for (const { bytes } of blocks) await fh.write(bytes)
  await fh.sync()
  await fh.close()
}

async function filePerBlock (dir: string, blocks: Block[]): Promise<void> {
  const made = new Set<string>()
  for (const { cid, bytes } of blocks) {
    const name = cid.toString()
    const shard = join(dir, name.slice(-3, -1))
    if (!made.has(shard)) { await mkdir(shard, { recursive: true }); made.add(shard) }
    const fh = await open(join(shard, name), 'w')
    await fh.write(bytes)
    await fh.sync()
    await fh.close()
  }
}

async function lmdbAlone (dir: string, blocks: Block[]): Promise<void> {
  const db = openLmdb({ path: join(dir, 'db.lmdb'), compression: false, cache: false, encoding: 'binary' })
  for (const { cid, bytes } of blocks) void db.put(cid.toString(), bytes)
  await db.flushed
  await db.close()
}

const root = await mkdtemp(join(tmpdir(), 'swarmpack-store-bench-'))
try {
  const blocks = makeBlocks()
  const total = blocks.length * BLOCK_KIB * 1024
  console.log(`${blocks.length} blocks of ${BLOCK_KIB} KiB (${TOTAL_MIB} MiB), ${RUNS} runs, in ${tmpdir()}; load average before: ${loadavg().map(l => l.toFixed(2)).join(' ')}`)
  const results: Record<string, number[]> = {}
  const add = (k: string, v: number): void => { (results[k] ??= []).push(v) }
  const time = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
    globalThis.gc?.()
    const t = performance.now()
    await fn()
    add(name, mibs(total, performance.now() - t))
  }
  for (let run = 0; run < RUNS; run++) {
    const dir = (name: string): string => join(root, `${name}-${run}`)
    await time('SHA-256 (node:crypto)', async () => { for (const b of blocks) sha256(b.bytes) })

    let input = fresh(blocks)
    let store = await FsBlockstore.open(dir('durable'))
    await time('store put, durable', async () => { await windowed(input, async b => await store.put(b.cid, b.bytes)) })
    await store.close()
    store = await FsBlockstore.open(dir('durable'))
    await time('store getBytes, first read', async () => { for (const b of blocks) await store.getBytes(b.cid) })
    await time('store getBytes, warm', async () => { for (const b of blocks) await store.getBytes(b.cid) })
    await store.close()

    // the receive paths' case: bytes core already hashed (verifyBlock, rawCid) are not hashed again
    store = await FsBlockstore.open(dir('verified'))
    await time('store put, durable, bytes already verified', async () => { await windowed(blocks, async b => await store.put(b.cid, b.bytes)) })
    await store.close()

    input = fresh(blocks)
    store = await FsBlockstore.open(dir('nosync'), { fsync: false })
    await time('store put, fsync off', async () => { await windowed(input, async b => await store.put(b.cid, b.bytes)) })
    await store.close()

    if (run === 0) {
      // one sync per put: only a slice, it is slow
      const slice = fresh(blocks.slice(0, Math.min(blocks.length, 512)))
      store = await FsBlockstore.open(dir('serial'))
      const t = performance.now()
      for (const b of slice) await store.put(b.cid, b.bytes)
      add('store put, durable, one at a time', mibs(slice.length * BLOCK_KIB * 1024, performance.now() - t))
      await store.close()
    }

    await time('lmdb alone, durable', async () => { await lmdbAlone(dir('lmdb'), blocks) })
    await time('segment log, one fsync', async () => { await segmentLog(dir('segment'), blocks) })
    if (run === 0) await time('one file per block, fsync each', async () => { await filePerBlock(dir('files'), blocks) })
    for (const name of ['durable', 'verified', 'nosync', 'serial', 'lmdb', 'segment', 'files']) await rm(dir(name), { recursive: true, force: true })
  }
  // open cost on a store with many small blocks: the index table is read, no block is
  const scanDir = join(root, 'scan')
  const scanStore = await FsBlockstore.open(scanDir, { fsync: false })
  const small = Array.from({ length: SCAN_BLOCKS }, () => { const bytes = new Uint8Array(randomBytes(512)); return { cid: rawCid(bytes), bytes } })
  await windowed(small, async b => await scanStore.put(b.cid, b.bytes))
  await scanStore.close()
  const opens: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const t = performance.now()
    const s = await FsBlockstore.open(scanDir)
    opens.push((performance.now() - t) * 1000 / SCAN_BLOCKS)
    await s.close()
  }
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]))
  const base = m['SHA-256 (node:crypto)']
  console.log(`\nmedians of ${RUNS} (the one-at-a-time and file-per-block rows: one run), load average after: ${loadavg().map(l => l.toFixed(2)).join(' ')}`)
  console.log('| what | MiB/s | vs SHA-256 |')
  console.log('|---|---|---|')
  for (const [name, v] of Object.entries(m)) console.log(`| ${name} | ${v.toFixed(0)} | ${(v / base).toFixed(2)}x |`)
  console.log(`| open, index load | ${median(opens).toFixed(2)} µs/block (${SCAN_BLOCKS} blocks) | |`)
  console.log(`targets: durable put >= 0.3x SHA-256: ${m['store put, durable'] / base >= 0.3 ? 'met' : 'MISSED'}; getBytes (warm) >= 1x: ${m['store getBytes, warm'] / base >= 1 ? 'met' : 'MISSED'}`)
} finally {
  await rm(root, { recursive: true, force: true })
}
