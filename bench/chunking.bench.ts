/**
 * Chunker benchmark: speed of the FastCDC chunker against node:crypto SHA-256 (same run), and the
 * choice of min/avg/max: for each candidate, the blocks a package needs (v1 block count) against
 * what an update costs (bytes in blocks new in v2, as a share of v2), on
 *  - the generated 100 MiB tree with 1.5 % of bytes changed by edits and insertions in ten files,
 *  - two consecutive releases of a real npm package (typescript 5.8.2 -> 5.8.3),
 * side by side with fixed-size 256 KiB chunks.
 *
 *   npm run bench -- chunking
 */
import { createHash } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { DEFAULT_CHUNKER, chunkLengths, chunkStream } from '@swarmpack/core'
import type { ChunkerParams } from '@swarmpack/core'
import { MiB, editTree, fmt, median, npmReleases, randomStream, readTree, treeSize, updateTree } from './tree-core-content.js'
import type { TreeFile } from './tree-core-content.js'

const REPEATS = 5
const KiB = 1024

// --- 1. throughput -------------------------------------------------------------------------
const data = randomStream(42)(64 * MiB)
const sha: number[] = []; const cdc: number[] = []; const stream: number[] = []
for (let r = 0; r < REPEATS; r++) {
  let t = performance.now()
  const h = createHash('sha256')
  for (let o = 0; o < data.length; o += MiB) h.update(data.subarray(o, o + MiB))
  h.digest()
  sha.push(64 / ((performance.now() - t) / 1000))
  t = performance.now()
  chunkLengths(data)
  cdc.push(64 / ((performance.now() - t) / 1000))
  t = performance.now()
  const pieces = function * (): Generator<Uint8Array> { for (let o = 0; o < data.length; o += MiB) yield data.subarray(o, o + MiB) }
  for await (const c of chunkStream(pieces())) if (c.length === 0) throw new Error('empty chunk')
  stream.push(64 / ((performance.now() - t) / 1000))
}
console.log(`throughput, 64 MiB random, median of ${REPEATS} (MiB/s):`)
console.log(`  node:crypto sha256                    ${fmt(median(sha), 0)}`)
console.log(`  chunkLengths (JS loop, whole buffer)   ${fmt(median(cdc), 0)}  ratio ${fmt(median(cdc) / median(sha), 2)}`)
console.log(`  chunkStream (WebAssembly, 1 MiB in)   ${fmt(median(stream), 0)}  ratio ${fmt(median(stream) / median(sha), 2)}`)

// --- 2. parameter sweep --------------------------------------------------------------------
interface Candidate { label: string, params?: ChunkerParams, fixed?: number }
const p = (min: number, avg: number, max: number, nc = 2): ChunkerParams => ({ minSize: min * KiB, avgSize: avg * KiB, maxSize: max * KiB, normalization: nc })
const candidates: Candidate[] = [
  { label: '2K/8K/32K nc1', params: p(2, 8, 32, 1) },
  { label: '4K/16K/64K nc1', params: p(4, 16, 64, 1) },
  { label: '8K/16K/64K nc1', params: p(8, 16, 64, 1) },
  { label: '4K/16K/64K nc2', params: p(4, 16, 64) },
  { label: '8K/16K/64K nc2', params: p(8, 16, 64) },
  { label: '8K/32K/128K nc1', params: p(8, 32, 128, 1) },
  { label: '8K/32K/128K nc2', params: p(8, 32, 128) },
  { label: '16K/64K/256K nc2', params: p(16, 64, 256) },
  { label: '64K/256K/1M nc2', params: p(64, 256, 1024) },
  { label: 'fixed 256K', fixed: 256 * KiB }
]

function lengths (bytes: Uint8Array, c: Candidate): number[] {
  if (c.params !== undefined) return chunkLengths(bytes, c.params)
  const out: number[] = []
  for (let o = 0; o < bytes.length; o += c.fixed as number) out.push(Math.min(c.fixed as number, bytes.length - o))
  return out
}

/** Distinct chunks of a tree: digest -> size. */
function chunkSet (files: TreeFile[], c: Candidate): Map<string, number> {
  const set = new Map<string, number>()
  for (const f of files) {
    let o = 0
    for (const n of lengths(f.bytes, c)) {
      set.set(createHash('sha256').update(f.bytes.subarray(o, o + n)).digest('base64'), n)
      o += n
    }
  }
  return set
}

function compare (v1: TreeFile[] | Map<string, number>, v2: TreeFile[], c: Candidate): { blocks: number, mean: number, newShare: number, newBlocks: number } {
  const a = v1 instanceof Map ? v1 : chunkSet(v1, c)
  const b = chunkSet(v2, c)
  let newBytes = 0; let newBlocks = 0
  for (const [k, n] of b) if (!a.has(k)) { newBytes += n; newBlocks++ }
  let total = 0
  for (const n of a.values()) total += n
  return { blocks: a.size, mean: total / a.size, newShare: newBytes / treeSize(v2), newBlocks }
}

const v1 = updateTree()
// Three v2s with edits at different positions: the update figures are medians over them.
const v2s = [777, 778, 779].map(seed => editTree(v1, 0.015, seed))
const changed = v2s[0].changed
console.log(`\nupdate test: v1 ${fmt(treeSize(v1) / MiB)} MiB in ${v1.length} files; v2 changes ${fmt(changed / MiB, 2)} MiB (${fmt(100 * changed / treeSize(v1), 2)} %) in 10 files (4 edits each: 2 overwrites, 2 insertions); median of 3 edit placements`)
const npm = await npmReleases()
const t1 = await readTree(npm.dirs[0]); const t2 = await readTree(npm.dirs[1])
await rm(npm.base, { recursive: true, force: true })
console.log(`npm: typescript 5.8.2 -> 5.8.3, ${fmt(treeSize(t1) / MiB)} / ${fmt(treeSize(t2) / MiB)} MiB, ${t1.length} / ${t2.length} files`)
console.log('\ncandidate                 v1 blocks  mean KiB  chunkStream MiB/s | update: new % of v2  new blocks | typescript: blocks  new % of v2')
for (const c of candidates) {
  const speeds: number[] = []
  for (let r = 0; r < 3; r++) {
    const t = performance.now()
    if (c.params === undefined) { for (const f of v1) lengths(f.bytes, c) } else {
      for (const f of v1) for await (const chunk of chunkStream([f.bytes], c.params)) if (chunk.length === 0) throw new Error('empty chunk')
    }
    speeds.push(treeSize(v1) / MiB / ((performance.now() - t) / 1000))
  }
  const base = chunkSet(v1, c)
  const us = v2s.map(v => compare(base, v.files, c))
  const u = { blocks: us[0].blocks, mean: us[0].mean, newShare: median(us.map(x => x.newShare)), newBlocks: median(us.map(x => x.newBlocks)) }
  const n = compare(t1, t2, c)
  const mark = c.params !== undefined && JSON.stringify(c.params) === JSON.stringify({ ...DEFAULT_CHUNKER }) ? ' (default)' : ''
  console.log(`${(c.label + mark).padEnd(26)} ${String(u.blocks).padStart(6)}  ${fmt(u.mean / KiB).padStart(8)}  ${fmt(median(speeds), 0).padStart(8)}    | ${fmt(100 * u.newShare, 2).padStart(8)} %  ${String(u.newBlocks).padStart(9)}   | ${String(n.blocks).padStart(12)}  ${fmt(100 * n.newShare, 2).padStart(8)} %`)
}
