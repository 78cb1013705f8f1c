/** A publisher plus nodes that read its mirror directory (no libp2p), for the node's unit tests. */
import { mkdtemp, rm, readdir, readFile, readlink, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { createSwarmpack, type Swarmpack, type SwarmpackInit, type HookPackage, type DeploymentConfigInput } from '../../src/index.js'
import { TestPublisher, seededBytes } from './publisher.js'

export interface HookCall { hook: 'load' | 'unload', name: string, version: string, reason: string }

export class World {
  readonly calls: HookCall[] = []
  failLoad = new Set<string>()
  private readonly nodes: Swarmpack[] = []

  private constructor (readonly dir: string, readonly pub: TestPublisher) {}

  static async create (): Promise<World> {
    const dir = await mkdtemp(join(tmpdir(), 'swarmpack-node-'))
    return new World(dir, await TestPublisher.create(join(dir, 'publisher')))
  }

  config (modules: Record<string, string>, extra: Partial<DeploymentConfigInput> = {}): DeploymentConfigInput {
    return {
      modules,
      ...this.pub.trustConfig(),
      sources: { directories: [{ path: this.pub.mirrorDir }] },
      sharing: 'off',
      ...extra
    }
  }

  async node (name: string, modules: Record<string, string>, extra: Partial<SwarmpackInit> = {}, config: Partial<DeploymentConfigInput> = {}): Promise<Swarmpack> {
    const node = await createSwarmpack({
      dataDir: join(this.dir, name),
      config: this.config(modules, config),
      host: {
        load: async (pkg: HookPackage, ctx) => {
          this.calls.push({ hook: 'load', name: pkg.name, version: pkg.version, reason: ctx.reason })
          if (this.failLoad.has(`${pkg.name}@${pkg.version}`)) throw new Error(`refusing to load ${pkg.name}@${pkg.version}`)
        },
        unload: async (pkg: HookPackage, ctx) => { this.calls.push({ hook: 'unload', name: pkg.name, version: pkg.version, reason: ctx.reason }) }
      },
      ...extra
    })
    this.nodes.push(node)
    return node
  }

  /** Publishes a@ver (entry index.js + data) with dependencies. */
  async publish (name: string, version: string, deps: Record<string, string> = {}, data: Uint8Array = seededBytes(64 * 1024, name.length * 7 + 1), variants?: string[]): Promise<void> {
    await this.pub.publish({ name, version, dependencies: deps, entry: 'index.js', files: { 'index.js': `export const id = '${name}@${version}'\n`, 'data.bin': data }, ...(variants !== undefined ? { variants } : {}) })
  }

  takeCalls (): string[] {
    return this.calls.splice(0).map(c => `${c.hook} ${c.name}@${c.version}${c.reason === 'apply' ? '' : ` (${c.reason})`}`)
  }

  async close (): Promise<void> {
    for (const n of this.nodes) await n.stop().catch(() => {})
    await this.pub.close()
    await rm(this.dir, { recursive: true, force: true })
  }
}

/** Hash of the deployment state of a data dir: current link, generations, lock, package dirs, journal, pins. */
export async function deploymentState (dataDir: string): Promise<string> {
  const h = createHash('sha256')
  h.update(String(await readlink(join(dataDir, 'current')).catch(() => 'none')))
  const walk = async (d: string): Promise<void> => {
    const names = (await readdir(d).catch(() => [] as string[])).sort()
    for (const n of names) {
      const p = join(d, n)
      const st = await stat(p)
      h.update(p)
      if (st.isDirectory()) await walk(p)
      else h.update(await readFile(p))
    }
  }
  // pins as a set: an emptied pins file and no pins file are the same state
  const pins = await readFile(join(dataDir, 'store/pins.json'), 'utf8').then(t => (JSON.parse(t) as { pins: Record<string, string> }).pins, () => ({}))
  h.update(JSON.stringify(Object.entries(pins).sort()))
  for (const sub of ['generations', 'packages', 'swarmpack.lock', 'journal.json']) {
    const p = join(dataDir, sub)
    const st = await stat(p).catch(() => undefined)
    if (st === undefined) { h.update(`${sub}:absent`); continue }
    if (st.isDirectory()) await walk(p)
    else h.update(await readFile(p))
  }
  return h.digest('hex')
}
