/**
 * The fuzz benchmark: every fuzz-*.test.ts (one per package: bitswap frames, CAR streams, HTTP
 * mirror answers, manifests, trust envelopes and shards, config, lockfile, DHT head records) with
 * SWARMPACK_FUZZ_RUNS inputs per decoder (default 100,000; the test suite runs 1,000). Prints
 * the time per file, inputs per second and the load average; exits non-zero if any input failed.
 *
 *   flock /work/coord/bench.lock npm run bench -- fuzz
 *   SWARMPACK_FUZZ_RUNS=10000 npm run bench -- fuzz          (a quicker pass)
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, relative } from 'node:path'
import { ROOT } from '../test/helpers/swarm.js'

const runs = process.env.SWARMPACK_FUZZ_RUNS ?? '100000'
const files = readdirSync(join(ROOT, 'packages')).flatMap(p => {
  const dir = join(ROOT, 'packages', p, 'test')
  try { return readdirSync(dir).filter(f => /^fuzz-.*\.test\.ts$/.test(f)).map(f => join(dir, f)) } catch { return [] }
}).filter(f => process.argv.slice(2).every(x => f.includes(x)))
console.log(`${files.length} fuzz files, ${runs} inputs per decoder; load average ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
let failed = 0
for (const file of files) {
  const t0 = performance.now()
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=swarmpack-src', '--test', '--test-reporter=tap', relative(ROOT, file)], {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, SWARMPACK_FUZZ_RUNS: runs, SWARMPACK_TEST: '1' }
  })
  const s = (performance.now() - t0) / 1000
  const count = (k: string): number => Number(r.stdout.match(new RegExp(`^# ${k} (\\d+)$`, 'm'))?.[1] ?? 0)
  const tests = [...r.stdout.matchAll(/^ {4}(ok|not ok) \d+ - (.*)$/gm)].map(m => `${m[1] === 'ok' ? 'ok ' : 'FAIL'} ${m[2]}`)
  console.log(`\n${relative(ROOT, file)}: ${count('pass')} passed, ${count('fail')} failed in ${s.toFixed(1)} s (load ${loadavg()[0].toFixed(1)})`)
  for (const t of tests) console.log(`  ${t}`)
  if (r.status !== 0) {
    failed++
    console.log(r.stdout.split('\n').filter(l => /Counterexample|untyped|over 1 s|Error/.test(l)).slice(0, 20).join('\n'))
  }
}
console.log(`\nload average at end: ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
process.exit(failed > 0 ? 1 : 0)
