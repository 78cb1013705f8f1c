/**
 * Generated test data for the core-content benchmarks (chunking, pack): deterministic trees of
 * binary and text files, a version 2 with edits and insertions, a big tree written in pieces, and
 * the real npm package fixtures. Everything is derived from seeds, so every run sees the same bytes.
 */
import { execFileSync } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, readdir, readFile, lstat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const MiB = 1024 * 1024

/** Deterministic pseudo-random bytes: AES-128-CTR keystream keyed by the seed (fast, fixed). */
export function randomStream (seed: number): (n: number) => Buffer {
  const key = createHash('sha256').update(`swarmpack-bench-${seed}`).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  return (n: number) => cipher.update(Buffer.alloc(n))
}

const WORDS = ('the of and to in is that for it as with was on be by this are from or at an which have not but ' +
  'function return const let var import export default class interface type extends implements async await ' +
  'if else for while switch case break continue new delete typeof instanceof void null undefined true false ' +
  'package module version manifest block chunk swarm peer node index release signature key trust verify ' +
  'string number boolean object array promise error throw catch finally yield static public private readonly').split(' ')

/** Pseudo-random text (source-code-like words, lines of varying length). */
export function textBytes (size: number, seed: number): Buffer {
  const rnd = randomStream(seed)(size)
  const parts: string[] = []
  let len = 0
  let i = 0
  while (len < size) {
    const w = WORDS[rnd[i % rnd.length] % WORDS.length]
    const sep = rnd[(i + 1) % rnd.length] % 11 === 0 ? '\n' : ' '
    parts.push(w, sep)
    len += w.length + 1
    i += 2
  }
  return Buffer.from(parts.join('').slice(0, size))
}

export interface TreeFile { path: string, bytes: Buffer }

/**
 * The update-efficiency tree: ~100 MiB in 12 large binary files (5 MiB), 150 medium text files
 * (~200 KiB) and 1000 small text files (~10 KiB).
 */
export function updateTree (): TreeFile[] {
  const files: TreeFile[] = []
  const sizes = randomStream(1)(4096)
  for (let i = 0; i < 12; i++) files.push({ path: `assets/blob-${i}.bin`, bytes: randomStream(100 + i)(5 * MiB) })
  for (let i = 0; i < 150; i++) files.push({ path: `src/mod-${i % 10}/file-${i}.ts`, bytes: textBytes(150 * 1024 + sizes[i] * 400, 1000 + i) })
  for (let i = 0; i < 1000; i++) files.push({ path: `docs/page-${i % 20}/p-${i}.md`, bytes: textBytes(6 * 1024 + sizes[i + 200] * 32, 5000 + i) })
  return files
}

export function treeSize (files: TreeFile[]): number { return files.reduce((a, f) => a + f.bytes.length, 0) }

/**
 * Version 2: `share` of the bytes changed, spread over the ten largest files, each getting four
 * edits at spread-out positions: two overwrites and two insertions of equal size.
 */
export function editTree (v1: TreeFile[], share = 0.015, seed = 777): { files: TreeFile[], changed: number } {
  const budget = Math.round(treeSize(v1) * share)
  const targets = [...v1].sort((a, b) => b.bytes.length - a.bytes.length || (a.path < b.path ? -1 : 1)).slice(0, 10).map(f => f.path)
  const per = Math.floor(budget / 40)
  const rnd = randomStream(seed)
  let changed = 0
  const files = v1.map(f => {
    if (!targets.includes(f.path)) return f
    let b = f.bytes
    const r = rnd(16)
    for (let k = 0; k < 4; k++) {
      const at = Math.floor((k + 0.2 + (r[k] / 256) * 0.6) / 4 * (b.length - per))
      const patch = rnd(per)
      if (k % 2 === 0) { b = Buffer.concat([b.subarray(0, at), patch, b.subarray(at + per)]) } else { b = Buffer.concat([b.subarray(0, at), patch, b.subarray(at)]) }
      changed += per
    }
    return { path: f.path, bytes: b }
  })
  return { files, changed }
}

export async function writeTree (dir: string, files: TreeFile[]): Promise<void> {
  for (const f of files) {
    await mkdir(dirname(join(dir, f.path)), { recursive: true })
    const fh = await open(join(dir, f.path), 'w')
    await fh.write(f.bytes)
    await fh.close()
  }
}

/** A big tree written in 1 MiB pieces (never held in memory): files of 64 MiB plus small ones. */
export async function writeBigTree (dir: string, totalBytes: number, seed = 9): Promise<void> {
  const rnd = randomStream(seed)
  let left = totalBytes
  let i = 0
  while (left > 0) {
    const size = Math.min(left, i % 4 === 3 ? 256 * 1024 : 64 * MiB)
    const path = join(dir, `part-${i % 8}`, `file-${i}.bin`)
    await mkdir(dirname(path), { recursive: true })
    const fh = await open(path, 'w')
    for (let done = 0; done < size; done += MiB) await fh.write(rnd(Math.min(MiB, size - done)))
    await fh.close()
    left -= size
    i++
  }
}

export async function readTree (dir: string, rel = ''): Promise<TreeFile[]> {
  const out: TreeFile[] = []
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const p = rel === '' ? name : `${rel}/${name}`
    const st = await lstat(join(dir, p))
    if (st.isDirectory()) out.push(...await readTree(dir, p))
    else if (st.isFile()) out.push({ path: p, bytes: await readFile(join(dir, p)) })
  }
  return out
}

const root = resolve(fileURLToPath(import.meta.url), '../..')
export const FIXTURE_CACHE = join(root, 'bench/fixtures/cache')

/**
 * The two consecutive releases of a real npm package, fetched once with `npm pack` into
 * bench/fixtures/cache/ (gitignored) and unpacked under os.tmpdir(). Returns their directories.
 */
export async function npmReleases (name = 'typescript', versions = ['5.8.2', '5.8.3']): Promise<{ dirs: string[], base: string }> {
  await mkdir(FIXTURE_CACHE, { recursive: true })
  const base = await mkdtemp(join(tmpdir(), 'swarmpack-bench-npm-'))
  const dirs: string[] = []
  for (const v of versions) {
    const tgz = join(FIXTURE_CACHE, `${name}-${v}.tgz`)
    if (!existsSync(tgz)) execFileSync('npm', ['pack', `${name}@${v}`, '--pack-destination', FIXTURE_CACHE], { stdio: 'ignore' })
    const dir = join(base, v)
    await mkdir(dir)
    execFileSync('tar', ['-xzf', tgz, '-C', dir, '--strip-components=1'])
    dirs.push(dir)
  }
  return { dirs, base }
}

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

export const fmt = (x: number, d = 1): string => x.toFixed(d)
