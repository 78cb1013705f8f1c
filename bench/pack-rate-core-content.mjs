// Child process of bench/pack.bench.ts: pack throughput on the calling thread and in the chunk
// worker, next to node:crypto SHA-256 over bytes in memory, all in this one process and run. Plain
// JavaScript on the compiled package (dist/), as a host application runs it: under the TypeScript
// loader a worker thread would also start the loader (~0.5 s), which a host never pays.
// Prints JSON on stdout: per row, [wall MiB/s, MiB per CPU-second of the process (all threads),
// CPU ms per MiB of the main thread, of the busiest other thread (the chunk worker when there is
// one; else libuv's, lmdb's or V8's helpers)], per-thread CPU read from /proc/self/task (10 ms
// ticks), sampled every 20 ms so that a worker that exits at the end is still counted.
//
//   pack-rate-core-content.mjs throughput <tree> <work dir> <repeats> <tree MiB>
//   pack-rate-core-content.mjs threshold <work dir> <repeats> <MiB> [<MiB> ...]
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { FsBlockstore, pack } from '@swarmpack/core'

const MiB = 1024 * 1024
const meta = { name: 'bench', version: '1.0.0' }
const [mode, ...args] = process.argv.slice(2)

/** CPU ms so far of each thread of this process, by thread id. */
function threadCpu () {
  const out = new Map()
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(tid, (Number(f[11]) + Number(f[12])) * 10) // utime + stime, in 10 ms ticks
    } catch {} // the thread just exited
  }
  return out
}

async function rate (mib, f) {
  const before = threadCpu()
  const last = new Map()
  const sample = () => { for (const [tid, ms] of threadCpu()) last.set(tid, ms) }
  const sampler = setInterval(sample, 20)
  const c = process.cpuUsage()
  const t = performance.now()
  await f()
  const cpu = process.cpuUsage(c)
  const wall = performance.now() - t
  clearInterval(sampler)
  sample()
  const main = String(process.pid)
  let other = 0
  for (const [tid, ms] of last) if (tid !== main) other = Math.max(other, ms - (before.get(tid) ?? 0))
  return [mib / (wall / 1000), mib / ((cpu.user + cpu.system) / 1e6), (last.get(main) - before.get(main)) / mib, other / mib]
}

const shaData = randomBytes(64 * MiB)
const sha = () => rate(64, () => {
  const h = createHash('sha256')
  for (let o = 0; o < shaData.length; o += MiB) h.update(shaData.subarray(o, o + MiB))
  h.digest()
})

const rows = {}
const push = (k, v) => { (rows[k] ??= []).push(v) }

if (mode === 'throughput') {
  const [tree, work, repeats, mib] = [args[0], args[1], Number(args[2]), Number(args[3])]
  for (let r = 0; r < repeats; r++) {
    push('sha', await sha())
    for (const workers of [0, 1]) {
      const p = workers === 0 ? 'thread' : 'worker'
      // read + chunk + hash only: a store that keeps nothing
      push(`noop-${p}`, await rate(mib, () => pack(tree, meta, { blockstore: { put () {} }, workers })))
      push(`memory-${p}`, await rate(mib, () => pack(tree, meta, { blockstore: new MemoryBlockstore(), workers })))
      for (const [k, fsync] of [['fs', true], ['fsNoSync', false]]) {
        const dir = join(work, `store-${r}-${k}-${p}`)
        const store = await FsBlockstore.open(dir, { fsync })
        push(`${k}-${p}`, await rate(mib, () => pack(tree, meta, { blockstore: store, workers })))
        await store.close()
        await rm(dir, { recursive: true, force: true })
      }
    }
  }
} else if (mode === 'threshold') {
  const [work, repeats, ...sizes] = [args[0], Number(args[1]), ...args.slice(2).map(Number)]
  // trees of 1 MiB files (a smaller one for sizes under 1 MiB), packed into memory
  for (const mib of sizes) {
    const dir = join(work, `tree-${mib}`)
    await mkdir(dir, { recursive: true })
    for (let left = mib * MiB, i = 0; left > 0; left -= MiB, i++) await writeFile(join(dir, `f${i}`), randomBytes(Math.min(MiB, left)))
  }
  await pack(join(work, `tree-${sizes[0]}`), meta, { blockstore: new MemoryBlockstore(), workers: 0 }) // warm-up
  for (let r = 0; r < repeats; r++) {
    push('sha', await sha())
    for (const mib of sizes) {
      for (const workers of [0, 1]) {
        push(`${mib}-${workers === 0 ? 'thread' : 'worker'}`, await rate(mib, () => pack(join(work, `tree-${mib}`), meta, { blockstore: new MemoryBlockstore(), workers })))
      }
    }
  }
}
process.stdout.write(JSON.stringify(rows) + '\n')
