#!/usr/bin/env node
// Runs the test suite with node's built-in runner. TypeScript runs through tsx, and the
// `swarmpack-src` condition makes workspace packages resolve to their sources, so tests never
// see a stale build. Unit tests (packages/*/test) run two files at a time; integration tests
// (test/) start swarms of processes, so they run one file at a time.
//
//   node scripts/run-tests.mjs [--unit | --integration | --dir <package dir>] [name filter...]
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync, readFileSync, mkdirSync, existsSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(fileURLToPath(import.meta.url), '../..')
const args = process.argv.slice(2)
const only = args.includes('--unit') ? 'unit' : args.includes('--integration') ? 'integration' : 'all'
const dirIndex = args.indexOf('--dir')
const dir = dirIndex >= 0 ? resolve(args[dirIndex + 1]) : undefined
const filters = args.filter((a, i) => !a.startsWith('--') && (dirIndex < 0 || i !== dirIndex + 1))

function findTests (base) {
  if (!existsSync(base)) return []
  const out = []
  for (const entry of readdirSync(base)) {
    if (entry === 'node_modules' || entry === 'fixtures' || entry === 'dist') continue
    const path = join(base, entry)
    if (statSync(path).isDirectory()) out.push(...findTests(path))
    else if (entry.endsWith('.test.ts')) out.push(path)
  }
  return out.sort()
}

const keep = (files) => files.filter(f => filters.length === 0 || filters.some(x => f.includes(x)))

const phases = []
if (dir !== undefined) {
  phases.push({ name: relative(root, dir) || '.', files: keep(findTests(join(dir, 'test'))), concurrency: 2 })
} else {
  if (only !== 'integration') {
    const unit = readdirSync(join(root, 'packages')).flatMap(p => findTests(join(root, 'packages', p, 'test')))
    phases.push({ name: 'unit', files: keep(unit), concurrency: 2 })
  }
  if (only !== 'unit') phases.push({ name: 'integration', files: keep(findTests(join(root, 'test'))), concurrency: 1 })
}

mkdirSync(join(root, '.tmp'), { recursive: true })
let passed = 0
let failed = 0
let skipped = 0
let status = 0
for (const phase of phases) {
  if (phase.files.length === 0) continue
  console.log(`\n=== ${phase.name}: ${phase.files.length} test files ===`)
  const tap = join(root, '.tmp', `tests-${phase.name.replace(/[^a-z0-9]+/gi, '_')}.tap`)
  const result = spawnSync(process.execPath, [
    '--import', 'tsx', '--conditions=swarmpack-src',
    '--test', `--test-concurrency=${phase.concurrency}`,
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tap}`,
    ...phase.files.map(f => relative(root, f))
  ], { cwd: root, stdio: 'inherit', env: { ...process.env, SWARMPACK_TEST: '1' } })
  if (result.status !== 0) status = result.status ?? 1
  const text = existsSync(tap) ? readFileSync(tap, 'utf8') : ''
  const count = (k) => Number(text.match(new RegExp(`^# ${k} (\\d+)$`, 'm'))?.[1] ?? 0)
  passed += count('pass')
  failed += count('fail') + count('cancelled')
  skipped += count('skipped')
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(status !== 0 ? status : failed > 0 ? 1 : 0)
