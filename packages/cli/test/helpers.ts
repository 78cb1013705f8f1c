/**
 * Runs the `swarmpack` command as a user would: a real process (the bin, sources through tsx with
 * the `swarmpack-src` condition), in a temporary working directory; and writes small packages.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createCipheriv } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../bin/swarmpack.js', import.meta.url))
export const TSX = import.meta.resolve('tsx')
export const NODE_ARGS = ['--import', TSX, '--conditions=swarmpack-src', BIN]

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
  /** stdout parsed as one JSON document (when it is one). */
  json?: any
}

export interface RunOptions {
  cwd: string
  env?: Record<string, string>
  timeoutMs?: number
}

/** Runs `swarmpack …` to completion (bounded). */
export async function swarmpack (args: string[], options: RunOptions): Promise<RunResult> {
  const child = spawn(process.execPath, [...NODE_ARGS, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timeoutMs = options.timeoutMs ?? 120_000
  const code = await new Promise<number | null>((resolve, reject) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`swarmpack ${args.join(' ')} did not finish within ${timeoutMs} ms\nstderr: ${stderr}`)) }, timeoutMs)
    child.on('close', (c) => { clearTimeout(t); resolve(c) })
  })
  const result: RunResult = { code, stdout, stderr }
  try { result.json = JSON.parse(stdout) } catch { /* not JSON */ }
  return result
}

/** Asserts the exit code, showing the output when it differs. */
export function expectCode (r: RunResult, code: number): void {
  assert.equal(r.code, code, `exit ${String(r.code)}, expected ${code}\nstdout: ${r.stdout.slice(0, 3000)}\nstderr: ${r.stderr.slice(0, 3000)}`)
}

/** A JSON result document: schema version, ok, the command. */
export function expectJson (r: RunResult, command: string, ok = true): any {
  assert.ok(r.json !== undefined, `stdout is not one JSON document: ${r.stdout.slice(0, 500)}`)
  assert.deepEqual(r.json.schema, { name: 'swarmpack-cli', version: 1 })
  assert.equal(r.json.command, command)
  assert.equal(r.json.ok, ok, JSON.stringify(r.json.error ?? r.json).slice(0, 1000))
  return ok ? r.json.result : r.json.error
}

/** NDJSON lines of `--json=stream`. */
export function ndjson (stdout: string): any[] {
  return stdout.split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l))
}

/** Starts a long-running `swarmpack …` (serve, update --watch) and waits for a line of its stdout. */
export async function start (args: string[], options: RunOptions & { until: (line: any) => boolean }): Promise<{ child: ChildProcess, first: any, lines: any[], stderr: () => string, stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [...NODE_ARGS, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: any[] = []
  let stderr = ''
  let buf = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>(resolve => { child.on('close', c => { resolve(c) }) })
  const first = await new Promise<any>((resolve, reject) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`swarmpack ${args.join(' ')}: no matching line within ${options.timeoutMs ?? 120_000} ms\nstderr: ${stderr}`)) }, options.timeoutMs ?? 120_000)
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let parsed: unknown
        try { parsed = JSON.parse(line) } catch { continue }
        lines.push(parsed)
        if (options.until(parsed)) { clearTimeout(t); resolve(parsed) }
      }
    })
    void exited.then(c => { clearTimeout(t); reject(new Error(`swarmpack ${args.join(' ')} exited (${String(c)}) early\nstderr: ${stderr}`)) })
  })
  return {
    child,
    first,
    lines,
    stderr: () => stderr,
    stop: async () => {
      child.kill('SIGINT')
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000)
      const c = await exited
      clearTimeout(t)
      return c
    }
  }
}

/** Deterministic pseudo-random bytes: AES-CTR over zeros, keyed by the seed. */
export function seeded (size: number, seed: number): Uint8Array {
  const key = Buffer.alloc(16)
  key.writeUInt32BE(seed >>> 0)
  return new Uint8Array(createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size)))
}

/** A package directory with swarmpack-package.json and files. */
export async function writePackage (dir: string, meta: Record<string, unknown>, files: Record<string, string | Uint8Array>): Promise<string> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'swarmpack-package.json'), JSON.stringify(meta, null, 2))
  for (const [p, content] of Object.entries(files)) {
    await mkdir(join(dir, p, '..'), { recursive: true })
    await writeFile(join(dir, p), content)
  }
  return dir
}

/** Sets keys of a JSONC config file written by `swarmpack init` (text edit: the comments stay). */
export async function patchConfig (file: string, edits: Array<[RegExp, string]>): Promise<void> {
  let text = await readFile(file, 'utf8')
  for (const [re, to] of edits) {
    assert.match(text, re)
    text = text.replace(re, to)
  }
  await writeFile(file, text)
}
