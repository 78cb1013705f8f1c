#!/usr/bin/env node
// Sums a `node --cpu-prof` profile (.cpuprofile) by function group: self time of every sample,
// grouped by where the function lives (idle, GC, a package in node_modules, a swarmpack source
// file, Node's internals), largest first. Used for the fetcher profiles in docs/benchmarks/dht.md:
//
//   SWARMPACK_BENCH_CPU_PROF=/tmp/prof npm run bench -- dht-transfer
//   node bench/cpu-profile-summary.mjs /tmp/prof/CPU.*.cpuprofile [--top 40] [--within fetchDagNow]
//
// --within NAME counts only the samples from the first to the last one with NAME on the stack
// (the transfers, not the process's start-up and shut-down).
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
const option = (name) => { const at = args.indexOf(name); return at >= 0 ? args[at + 1] : undefined }
const top = Number(option('--top') ?? 0)
const within = option('--within')
const file = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'))
if (file === undefined) {
  console.error('usage: cpu-profile-summary.mjs <file.cpuprofile> [--top N]')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8'))

/** The group a call frame's self time counts under. */
function group (frame) {
  const { functionName: fn, url } = frame
  if (fn === '(idle)' || fn === '(garbage collector)' || fn === '(program)' || fn === '(root)') return fn
  if (url === '') return `native: ${fn === '' ? '(anonymous)' : fn}`
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/')
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
  }
  const src = url.match(/packages\/([^/]+)\/src\/(.+)$/)
  if (src !== null) return `swarmpack ${src[1]}: ${src[2]}`
  if (url.startsWith('node:')) return `${url.replace(/^node:internal\//, 'node:')}`
  return url.replace(/^file:\/\/.*\/(bench|test)\//, '$1/')
}

const byId = new Map(profile.nodes.map(n => [n.id, n]))
const parent = new Map()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const onStack = (id, name) => { for (let at = id; at !== undefined; at = parent.get(at)) if (byId.get(at)?.callFrame.functionName === name) return true; return false }
let first = 0
let last = profile.samples.length - 1
if (within !== undefined) {
  while (first <= last && !onStack(profile.samples[first], within)) first++
  while (last >= first && !onStack(profile.samples[last], within)) last--
}
const selfGroup = new Map()
const selfFn = new Map()
let total = 0
for (let i = first; i <= last; i++) {
  const node = byId.get(profile.samples[i])
  const dt = profile.timeDeltas[i] ?? 0
  if (node === undefined) continue
  total += dt
  const g = group(node.callFrame)
  selfGroup.set(g, (selfGroup.get(g) ?? 0) + dt)
  const f = `${node.callFrame.functionName || '(anonymous)'} ${g}`
  selfFn.set(f, (selfFn.get(f) ?? 0) + dt)
}
const pct = (us) => `${(100 * us / total).toFixed(1).padStart(5)} %`
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`)
for (const [g, us] of [...selfGroup].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${pct(us)}  ${g}`)
if (top > 0) {
  console.log('\nfunctions (self time):')
  for (const [f, us] of [...selfFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${f}`)
}
