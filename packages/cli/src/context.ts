/**
 * What every command shares: the global options, where the config and the data dir are, the
 * output, and opening the node over them. The node is always the one from `swarmpack`: the CLI
 * only chooses options and prints.
 */
import { stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { DeploymentConfig, DeploymentConfigInput, HostHooks, KeyStore, Swarmpack } from 'swarmpack'
import type { Output } from './output.js'
import { ProgressView } from './progress.js'

export interface GlobalOptions {
  config?: string
  dataDir?: string
  json?: boolean
  jsonStream?: boolean
  quiet?: boolean
  host?: string
}

export class CliError extends Error {
  constructor (readonly code: string, message: string, readonly details?: Record<string, unknown>) {
    super(message)
  }
}

export interface Paths {
  config: string
  configDir: string
  dataDir: string
  /** The project lockfile `resolve --write` writes and `install --frozen` reads. */
  lock: string
}

export function pathsOf (g: GlobalOptions): Paths {
  const config = resolve(g.config ?? process.env.SWARMPACK_CONFIG ?? 'swarmpack.json')
  const configDir = dirname(config)
  const dataDir = resolve(g.dataDir ?? process.env.SWARMPACK_DATA_DIR ?? join(configDir, '.swarmpack'))
  return { config, configDir, dataDir, lock: join(configDir, 'swarmpack.lock') }
}

export async function exists (path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}

/** Host hooks from a module (`--host`): its `load` / `unload` exports (or its default export's). */
async function loadHost (module: string): Promise<HostHooks> {
  const m = await import(pathToFileURL(resolve(module)).href) as { default?: HostHooks } & HostHooks
  const hooks = m.load !== undefined || m.unload !== undefined ? m : m.default
  if (hooks === undefined || (typeof hooks.load !== 'function' && typeof hooks.unload !== 'function')) {
    throw new CliError('ERR_USAGE', `host module ${module} exports neither load nor unload`)
  }
  return { ...(hooks.load !== undefined ? { load: hooks.load } : {}), ...(hooks.unload !== undefined ? { unload: hooks.unload } : {}) }
}

export interface OpenOptions {
  /** Start the libp2p peer (when the config shares). Default true. */
  network?: boolean
  /** Follow the indexers while starting. Default false (commands follow explicitly). */
  follow?: boolean
  /** For this run only (serve's --mode, --listen): the config file is not changed. */
  overrides?: { sharing?: string, listen?: string[] }
}

export class Context {
  readonly paths: Paths
  readonly view: ProgressView
  /** Aborted on Ctrl-C: long node operations stop at their next step. */
  signal?: AbortSignal
  private node?: Swarmpack

  constructor (readonly globals: GlobalOptions, readonly out: Output) {
    this.paths = pathsOf(globals)
    this.view = new ProgressView(out, (globals.host ?? process.env.SWARMPACK_HOST) !== undefined)
  }

  /** The data dir's signing keys. (The node is imported on first use: `--help` and usage errors stay fast.) */
  async keys (): Promise<KeyStore> {
    const { KeyStore } = await import('swarmpack')
    return KeyStore.of(this.paths.dataDir)
  }

  async requireConfig (): Promise<void> {
    if (!(await exists(this.paths.config))) {
      throw new CliError('ERR_CONFIG_NOT_FOUND', `no deployment config at ${this.paths.config}`, { config: this.paths.config })
    }
  }

  /** Opens (creates and starts) the node over the config file and the data dir. */
  async open (options: OpenOptions = {}): Promise<Swarmpack> {
    if (this.node !== undefined) return this.node
    await this.requireConfig()
    const { createSwarmpack, loadConfigFile } = await import('swarmpack')
    const hostModule = this.globals.host ?? process.env.SWARMPACK_HOST
    const host = hostModule !== undefined ? await loadHost(hostModule) : undefined
    let config: string | DeploymentConfigInput = this.paths.config
    const o = options.overrides
    if (o !== undefined) {
      const c = await loadConfigFile(this.paths.config)
      config = { ...c, ...(o.sharing !== undefined ? { sharing: o.sharing as DeploymentConfig['sharing'] } : {}), network: { ...c.network, ...(o.listen !== undefined ? { listen: o.listen } : {}) } }
    }
    this.node = await createSwarmpack({
      dataDir: this.paths.dataDir,
      config,
      network: options.network !== false,
      followOnStart: options.follow === true,
      // the CLI is not the host that runs the modules: with --host, hooks run at apply/rollback only
      loadOnStart: false,
      ...(host !== undefined ? { host } : {}),
      onProgress: this.view.onProgress
    })
    return this.node
  }

  async close (): Promise<void> {
    this.view.stop()
    const n = this.node
    this.node = undefined
    await n?.stop()
  }
}
