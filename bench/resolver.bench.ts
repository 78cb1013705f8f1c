/**
 * PubGrub resolution speed and metadata traffic.
 *
 * 1. Synthetic registry: 2,000 packages x 20 versions, 5-15 dependencies per version (seeded, so
 *    every run sees the same registry). A hidden assignment satisfies every constraint of its own
 *    versions, while 10% (SWARMPACK_RESOLVER_WRONG) of the other versions' dependencies point elsewhere, so the solver meets
 *    real conflicts. Satisfiable root: the first 10 packages. Unsatisfiable root: the same plus two
 *    packages that, deep down, need disjoint ranges of one package. The source is asynchronous and
 *    answers one listing or one version's dependencies per request (counted), optionally with a
 *    simulated latency to show what prefetching buys.
 * 2. A real npm graph (bench/fixtures/npm-graph/graph.json.gz, 1,029 packages, 25,962 versions),
 *    solved for its top-level ranges (which need two majors of some packages, so no single-version
 *    solution exists: we time the explained failure), and for the largest prefix-greedy subset of
 *    those ranges that is solvable.
 *
 * Baseline in the same run: a greedy walk that takes the newest `semver.maxSatisfying` version for
 * the first range that reaches each package and never backtracks (the least work any resolver must
 * do: read the metadata once and pick), over the same source.
 *
 *   npm run bench -- resolver
 */
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import semver from 'semver'
import { resolve, MetadataCache, type MetadataSource, type PackageListing, type VersionMetadata, type Resolution } from '@swarmpack/resolver'

const RUNS = Number(process.env.SWARMPACK_RESOLVER_RUNS ?? 3)
/** Runs for the (much quicker) real-graph solves. */
const NPM_RUNS = Number(process.env.SWARMPACK_RESOLVER_NPM_RUNS ?? 15)
/** Share of dependencies (of versions outside the hidden solution) that point away from it. */
const WRONG = Number(process.env.SWARMPACK_RESOLVER_WRONG ?? 0.1)
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const ms = (n: number): string => n >= 100 ? n.toFixed(0) : n.toFixed(1)

type Graph = Record<string, Record<string, Record<string, string>>>

/** An asynchronous source over a graph, one request per question, with optional latency. */
class GraphSource implements MetadataSource {
  constructor (readonly graph: Graph, readonly latencyMs = 0, readonly inline = false) {}
  private async wait (): Promise<void> {
    if (this.latencyMs > 0) await new Promise(resolve => setTimeout(resolve, this.latencyMs))
  }

  async listVersions (name: string): Promise<PackageListing> {
    await this.wait()
    const p = this.graph[name]
    if (p === undefined) return { versions: [], unavailable: { kind: 'not-found', message: '' } }
    return { versions: Object.keys(p).map(version => this.inline ? { version, dependencies: p[version] } : version) }
  }

  async getDependencies (name: string, version: string): Promise<VersionMetadata> {
    await this.wait()
    return { dependencies: this.graph[name][version] }
  }
}

/** Baseline: newest satisfying version for the first range that reaches a package; no backtracking. */
async function greedyWalk (source: MetadataSource, roots: Record<string, string>): Promise<number> {
  const chosen = new Map<string, string>()
  const listings = new Map<string, string[]>()
  const queue = Object.entries(roots)
  while (queue.length > 0) {
    const [name, range] = queue.shift() as [string, string]
    if (chosen.has(name)) continue
    let versions = listings.get(name)
    if (versions === undefined) {
      const l = await source.listVersions(name, {})
      versions = l.versions.map(v => typeof v === 'string' ? v : v.version)
      listings.set(name, versions)
    }
    const v = semver.maxSatisfying(versions, range)
    if (v === null) continue
    chosen.set(name, v)
    const deps = (await source.getDependencies(name, v, {})).dependencies
    for (const e of Object.entries(deps)) queue.push(e)
  }
  return chosen.size
}

// ---- 1. synthetic registry ----

function rng (seed: number): () => number {
  return () => { seed = (seed + 0x6d2b79f5) | 0; let t = Math.imul(seed ^ (seed >>> 15), 1 | seed); t ^= t + Math.imul(t ^ (t >>> 7), 61 | t); return ((t ^ (t >>> 14)) >>> 0) / 4294967296 }
}

function synthetic (): { graph: Graph, sat: Record<string, string>, unsat: Record<string, string> } {
  const N = 2000; const V = 20
  const rand = rng(2026)
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))
  const version = (j: number): [number, number] => [1 + Math.floor(j / 5), j % 5]
  const target = Array.from({ length: N }, () => int(0, V - 1))
  const rangeIncluding = (j: number): string => {
    const [M, m] = version(j)
    switch (int(0, 3)) {
      case 0: return `^${M}.${int(0, m)}.0`
      case 1: return `~${M}.${m}.0`
      case 2: return `>=${M}.0.0 <${M + 1}.0.0 || >=${M + 2}.0.0`
      default: return `${M}.x`
    }
  }
  const graph: Graph = {}
  const depsOf = (p: number, own: number | undefined): Record<string, string> => {
    const deps: Record<string, string> = {}
    const n = int(5, 15)
    for (let k = 0; k < n && p + 1 < N; k++) {
      const q = int(p + 1, Math.min(N - 1, p + 400))
      const range = own === undefined || own === target[p] || rand() >= WRONG ? rangeIncluding(target[q]) : `^${int(1, 4)}.0.0`
      deps[`p${q}`] = range
    }
    return deps
  }
  for (let p = 0; p < N; p++) {
    graph[`p${p}`] = {}
    for (let j = 0; j < V; j++) { const [M, m] = version(j); graph[`p${p}`][`${M}.${m}.0`] = depsOf(p, j) }
  }
  // two packages that each look fine but need disjoint ranges of one deep package
  const deep = 1900
  for (const [trap, range] of [['trapA', '<3.0.0'], ['trapB', '>=3.0.0']]) {
    graph[trap] = {}
    for (let j = 0; j < V; j++) { const [M, m] = version(j); graph[trap][`${M}.${m}.0`] = { ...depsOf(int(1000, 1500), undefined), [`p${deep}`]: range } }
  }
  const sat: Record<string, string> = {}
  for (let p = 0; p < 10; p++) sat[`p${p}`] = rangeIncluding(target[p])
  return { graph, sat, unsat: { ...sat, trapA: '*', trapB: '*' } }
}

interface Row { label: string, time: number, baseline?: number, res?: Resolution, error?: string, requests?: string }

async function timeSolve (label: string, runs: number, make: () => { source: MetadataSource | MetadataCache }, roots: Record<string, string>, baseline?: () => Promise<unknown>): Promise<Row> {
  const times: number[] = []; const base: number[] = []
  let res: Resolution | undefined; let error: string | undefined; let requests: string | undefined
  // baseline runs first, so their garbage is not collected inside the timed solves
  // no forced gc() between runs: a full collection just before a solve made a warm 5 ms solve
  // take 40-60 ms here (the collector's cost lands in the next run), which is not "warm"
  for (let i = 0; baseline !== undefined && i < runs; i++) { const t0 = performance.now(); await baseline(); base.push(performance.now() - t0) }
  for (let i = 0; i < runs; i++) {
    const { source } = make()
    const t = performance.now()
    try {
      res = await resolve({ dependencies: roots, source })
      requests = JSON.stringify(res.stats.requests)
    } catch (err) {
      const e = err as Error & { code: string, details: { stats: Resolution['stats'], failure: { lines: string[] } } }
      if (e.code !== 'ERR_RESOLVE_CONFLICT') throw err
      error = `${e.details.failure.lines.length} explanation lines; ${e.details.stats.decisions} decisions, ${e.details.stats.conflicts} conflicts`
      requests = JSON.stringify(e.details.stats.requests)
    }
    times.push(performance.now() - t)
  }
  return { label, time: median(times), baseline: base.length > 0 ? median(base) : undefined, res, error, requests }
}

function print (rows: Row[]): void {
  for (const r of rows) {
    const outcome = r.res !== undefined ? `${r.res.versions.size} packages, ${r.res.stats.decisions} decisions, ${r.res.stats.conflicts} conflicts` : r.error
    const ratio = r.baseline !== undefined ? `  (greedy walk ${ms(r.baseline)} ms, ratio ${(r.time / r.baseline).toFixed(2)})` : ''
    console.log(`  ${r.label.padEnd(52)} ${ms(r.time).padStart(7)} ms${ratio}\n      ${outcome}; requests ${r.requests ?? '-'}`)
  }
}

async function main (): Promise<void> {
  console.log(`resolver benchmark, medians of ${RUNS} runs (synthetic) and ${NPM_RUNS} runs (npm graph)`)
  const { graph, sat, unsat } = synthetic()
  console.log('\n1. synthetic registry: 2,000 packages x 20 versions, 5-15 dependencies each')
  const rows: Row[] = []
  // warm the JIT once so the first configuration is not penalised
  await resolve({ dependencies: sat, source: new GraphSource(graph) })
  rows.push(await timeSolve('satisfiable, cold cache (async source, no latency)', RUNS, () => ({ source: new GraphSource(graph) }), sat, async () => await greedyWalk(new GraphSource(graph), sat)))
  const warm = new MetadataCache(new GraphSource(graph))
  await resolve({ dependencies: sat, source: warm })
  rows.push(await timeSolve('satisfiable, warm cache', RUNS, () => ({ source: warm }), sat))
  rows.push(await timeSolve('unsatisfiable, cold cache', RUNS, () => ({ source: new GraphSource(graph) }), unsat))
  const warmU = new MetadataCache(new GraphSource(graph))
  await resolve({ dependencies: unsat, source: warmU }).catch(() => {})
  rows.push(await timeSolve('unsatisfiable, warm cache', RUNS, () => ({ source: warmU }), unsat))
  const slow = RUNS
  rows.push(await timeSolve('satisfiable, 1 ms per request, prefetch 16', slow, () => ({ source: new MetadataCache(new GraphSource(graph, 1), { prefetchConcurrency: 16 }) }), sat, async () => await greedyWalk(new GraphSource(graph, 1), sat)))
  rows.push(await timeSolve('satisfiable, 1 ms per request, no prefetch', slow, () => ({ source: new MetadataCache(new GraphSource(graph, 1), { prefetchConcurrency: 0 }) }), sat))
  print(rows)

  console.log('\n2. real npm graph (bench/fixtures/npm-graph)')
  const fixture = JSON.parse(gunzipSync(readFileSync(join(fileURLToPath(import.meta.url), '../fixtures/npm-graph/graph.json.gz'))).toString()) as {
    roots: Record<string, string>, packages: Record<string, { deps: Array<Record<string, string>>, versions: Record<string, number> }>
  }
  const npm: Graph = {}
  let versions = 0
  for (const [name, p] of Object.entries(fixture.packages)) {
    npm[name] = {}
    for (const [v, i] of Object.entries(p.versions)) { npm[name][v] = p.deps[i]; versions++ }
  }
  console.log(`  ${Object.keys(npm).length} packages, ${versions} versions, ${Object.keys(fixture.roots).length} top-level ranges`)
  const npmWarm = new MetadataCache(new GraphSource(npm, 0, true))
  // the largest prefix-greedy subset of the top-level ranges that has a single-version solution
  const solvable: Record<string, string> = {}
  const dropped: string[] = []
  for (const [n, r] of Object.entries(fixture.roots)) {
    try { await resolve({ dependencies: { ...solvable, [n]: r }, source: npmWarm }); solvable[n] = r } catch { dropped.push(n) }
  }
  for (let i = 0; i < 10; i++) await resolve({ dependencies: solvable, source: npmWarm }) // JIT warm-up
  const nrows: Row[] = []
  nrows.push(await timeSolve(`all ${Object.keys(fixture.roots).length} top-level ranges, warm (explained failure)`, NPM_RUNS, () => ({ source: npmWarm }), fixture.roots))
  nrows.push(await timeSolve(`solvable subset (${Object.keys(solvable).length} ranges), warm`, NPM_RUNS, () => ({ source: npmWarm }), solvable, async () => await greedyWalk(new GraphSource(npm, 0, true), solvable)))
  nrows.push(await timeSolve(`solvable subset, cold cache (parsing the listings)`, NPM_RUNS, () => ({ source: new GraphSource(npm, 0, true) }), solvable))
  print(nrows)
  console.log(`  dropped from the subset (each needs a second major of something): ${dropped.join(', ')}`)
  try { await resolve({ dependencies: fixture.roots, source: npmWarm }) } catch (err) { console.log('\n  explanation for all top-level ranges:\n' + (err as Error).message.split('\n').map(l => '    ' + l).join('\n')) }
}

await main()
