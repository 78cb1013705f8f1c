/**
 * Process-spawning helpers for integration tests and benchmarks: start swarmpack peers
 * (test/helpers/swarm-peer.ts or a fixture) as child processes, read their JSON-lines output, send them
 * commands, and build package data directories for them.
 */
import '@swarmpack/core/polyfill'
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { FsBlockstore, pack, type CID } from '@swarmpack/core'

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..')
export const NODE_SCRIPT = join(ROOT, 'test/helpers/swarm-peer.ts')
/** A peer that corrupts, dies or stalls on cue (see the file). */
export const FAULTY_PEER_SCRIPT = join(ROOT, 'test/helpers/faulty-peer.ts')

export interface NodeEvent {
  event: string
  [key: string]: any
}

export class ChildPeer {
  readonly proc: ChildProcess
  readonly events: NodeEvent[] = []
  readonly stderr: string[] = []
  peerId = ''
  multiaddrs: string[] = []
  private readonly waiters = new Set<{ match: (e: NodeEvent) => boolean, resolve: (e: NodeEvent) => void }>()
  private exitCode: number | null | undefined
  readonly exited: Promise<number | null>

  /**
   * `launcher`: a command the node process runs under, e.g. `['ip', 'netns', 'exec', ns]`.
   * `SWARMPACK_PEER_NODE_ARGS` (space-separated) adds Node flags to every peer, e.g.
   * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile them (Node refuses these in NODE_OPTIONS).
   */
  constructor (readonly name: string, script: string, args: string[], env: Record<string, string> = {}, launcher: string[] = []) {
    const nodeArgs = (process.env.SWARMPACK_PEER_NODE_ARGS ?? '').split(' ').filter(a => a !== '')
    const argv = [process.execPath, ...nodeArgs, '--import', 'tsx', '--conditions=swarmpack-src', script, '--json', ...args]
    const [cmd, ...rest] = [...launcher, ...argv]
    this.proc = spawn(cmd, rest, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe']
    })
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let e: NodeEvent
      try { e = JSON.parse(line) as NodeEvent } catch { return }
      this.events.push(e)
      for (const w of [...this.waiters]) if (w.match(e)) { this.waiters.delete(w); w.resolve(e) }
    })
    // SWARMPACK_PEER_STDERR_DIR keeps each peer's whole stderr (e.g. its DEBUG log) in <dir>/<name>.log
    const stderrDir = process.env.SWARMPACK_PEER_STDERR_DIR
    const stderrFile = stderrDir !== undefined && stderrDir !== '' ? createWriteStream(join(stderrDir, `${name}.log`)) : undefined
    createInterface({ input: this.proc.stderr! }).on('line', (line) => {
      stderrFile?.write(line + '\n')
      this.stderr.push(line)
      if (this.stderr.length > 200) this.stderr.shift()
    })
    this.exited = new Promise(resolve => { this.proc.once('exit', (code) => { this.exitCode = code; resolve(code) }) })
  }

  /** Resolves with the first event (past or future) matching; rejects after `timeout` ms. */
  async waitFor (match: (e: NodeEvent) => boolean, timeout = 60_000, what = 'event'): Promise<NodeEvent> {
    return this.events.find(match) ?? this.next(match, timeout, what)
  }

  /** Like waitFor, but only events from now on. */
  async next (match: (e: NodeEvent) => boolean, timeout = 60_000, what = 'event'): Promise<NodeEvent> {
    return new Promise((resolve, reject) => {
      const w = { match, resolve: (e: NodeEvent) => { clearTimeout(timer); resolve(e) } }
      const timer = setTimeout(() => {
        this.waiters.delete(w)
        reject(new Error(`${this.name}: no ${what} within ${timeout} ms; stderr tail:\n${this.stderr.slice(-15).join('\n')}`))
      }, timeout)
      this.waiters.add(w)
    })
  }

  async ready (timeout = 150_000): Promise<this> {
    const e = await this.waitFor(ev => ev.event === 'ready' || (ev.event === 'error' && ev.command === 'start'), timeout, 'ready line')
    if (e.event === 'error') throw new Error(`${this.name} failed to start: ${String(e.message)}`)
    this.peerId = e.peerId as string
    this.multiaddrs = e.multiaddrs as string[]
    return this
  }

  send (command: string): void {
    this.proc.stdin!.write(command + '\n')
  }

  /** Sends a command and waits for the reply event (or an error naming the command). */
  async command (command: string, replyEvent: string, timeout = 60_000): Promise<NodeEvent> {
    const reply = this.next(e => e.event === replyEvent || (e.event === 'error' && e.command === command), timeout, `reply to "${command}"`)
    this.send(command)
    const e = await reply
    if (e.event === 'error') throw new Error(`${this.name}: ${command}: ${String(e.code)} ${String(e.message)}`)
    return e
  }

  get running (): boolean {
    return this.exitCode === undefined
  }

  kill (signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.proc.kill(signal)
  }

  /** SIGTERM (clean shutdown), SIGKILL if it lingers. */
  async stop (timeout = 10_000): Promise<number | null> {
    if (!this.running) return this.exitCode ?? null
    this.proc.kill('SIGTERM')
    const timer = setTimeout(() => { this.kill('SIGKILL') }, timeout)
    const code = await this.exited
    clearTimeout(timer)
    return code
  }
}

/** Starts test/helpers/swarm-peer.ts (JSON output) with the given flags and waits for its ready line. */
export async function startNode (name: string, args: string[], options: { script?: string, env?: Record<string, string>, timeout?: number } = {}): Promise<ChildPeer> {
  const peer = new ChildPeer(name, options.script ?? NODE_SCRIPT, args, options.env)
  try {
    return await peer.ready(options.timeout)
  } catch (err) {
    peer.kill()
    throw err
  }
}

/**
 * Asks `peer` (`providers <root>`, a DHT lookup) until the DHT lists every peer id in `wanted` (at
 * least `wanted` providers when it is a number; a list `wanted` accepts when a function); returns
 * the last list. A fetch's own lookup
 * settles soon after the first answers and announcements take a while to be stored, so a test
 * that needs particular providers asked waits for them here (and passes them to the fetch).
 */
export async function waitForProviders (peer: ChildPeer, root: string, wanted: string[] | number | ((found: string[]) => boolean), timeout = 120_000): Promise<string[]> {
  const enough = (found: string[]): boolean => typeof wanted === 'number' ? found.length >= wanted : typeof wanted === 'function' ? wanted(found) : wanted.every(p => found.includes(p))
  let found: string[] = []
  for (const deadline = Date.now() + timeout; !enough(found);) {
    if (Date.now() > deadline) throw new Error(`${peer.name}: the DHT did not list the providers wanted (${typeof wanted === 'function' ? 'by the test' : String(wanted)}) within ${timeout} ms; found ${found.join(', ') || 'none'}`)
    try {
      found = (await peer.command(`providers ${root}`, 'found-providers', 30_000)).peers as string[]
    } catch (err) {
      if (!/ERR_DHT_NO_PROVIDERS|ERR_DHT_QUERY_FAILED/.test((err as Error).message)) throw err
    }
    if (!enough(found)) await delay(500) // routing tables or announcements not there yet: ask again
  }
  return found
}

/** Writes a package directory of random files (deterministic per seed) totalling about `bytes`. */
export async function writePackageDir (dir: string, bytes: number, seed = 'swarmpack'): Promise<void> {
  await mkdir(join(dir, 'lib'), { recursive: true })
  await writeFile(join(dir, 'README.md'), `# test package ${seed}\n`)
  // pseudo-random but reproducible content: sha256 counter stream
  const files = Math.max(1, Math.ceil(bytes / (4 * 1024 * 1024)))
  let left = bytes
  for (let f = 0; f < files; f++) {
    const size = Math.min(left, Math.ceil(bytes / files))
    left -= size
    const buf = Buffer.allocUnsafe(size)
    const block = createHash('sha256').update(`${seed}/${f}`).digest()
    let state = randomFromSeed(block)
    for (let off = 0; off < size; off += 4) {
      state = (state * 1664525 + 1013904223) >>> 0
      buf.writeUInt32LE(state, Math.min(off, size - 4))
    }
    await writeFile(join(dir, 'lib', `part-${f}.bin`), buf)
  }
}

function randomFromSeed (digest: Buffer): number {
  return digest.readUInt32LE(0)
}

/** sha256 of every file under dir, keyed by relative path. */
export async function hashTree (dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name)
      if (entry.isDirectory()) await walk(p)
      else out[relative(dir, p)] = createHash('sha256').update(await readFile(p)).digest('hex')
    }
  }
  await walk(dir)
  return out
}

/**
 * Packs `contentDir` into the block store of a node data directory (`<dataDir>/store`) and pins
 * it, so test/helpers/swarm-peer.ts started on that data dir serves and announces it.
 */
export async function seedDataDir (dataDir: string, contentDir: string, name = 'test-pkg', version = '1.0.0'): Promise<{ root: CID, blocks: number, bytes: number }> {
  const store = await FsBlockstore.open(join(dataDir, 'store'), { fsync: false })
  try {
    const r = await pack(contentDir, { name, version }, { blockstore: store })
    await store.pin(`${name}@${version}`, r.root)
    return { root: r.root, blocks: r.blocks, bytes: r.totalSize }
  } finally {
    await store.close()
  }
}

/** A fresh random id for temp names. */
export function tag (): string {
  return randomBytes(4).toString('hex')
}

/** Stops every peer (clean first, SIGKILL after a few seconds). */
export async function stopAll (peers: Iterable<ChildPeer>): Promise<void> {
  await Promise.all([...peers].map(async p => p.stop(5000).catch(() => {})))
}
