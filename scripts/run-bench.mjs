#!/usr/bin/env node
// Runs the benchmarks in bench/ one after another (they measure the machine, so never in
// parallel). Each prints its own table with ratios against a baseline measured in the same run.
//
//   npm run bench                 all of them
//   npm run bench -- chunking     only files whose name contains "chunking"
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(fileURLToPath(import.meta.url), '../..')
const filters = process.argv.slice(2)
const files = readdirSync(join(root, 'bench'))
  .filter(f => f.endsWith('.bench.ts'))
  .filter(f => filters.length === 0 || filters.some(x => f.includes(x)))
  .sort()
let status = 0
for (const file of files) {
  console.log(`\n### bench/${file}`)
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--conditions=swarmpack-src', join('bench', file)], { cwd: root, stdio: 'inherit' })
  if (r.status !== 0) { console.error(`bench/${file} failed (${r.status ?? r.signal})`); status = 1 }
}
process.exit(status)
