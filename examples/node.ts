/**
 * Embedding swarmpack in a long-running host: the host creates the node with `createSwarmpack`,
 * hands it load/unload hooks (here: import each module's entry and call its `start()` / `stop()`),
 * and keeps its deployment current by following the indexes every few minutes. While it runs, the
 * node shares what it installed with the swarm. (`swarmpack serve` is the command-line peer; this is
 * the library-embedding example.)
 *
 *   npm run node -- --config ./swarmpack.json --data-dir ./.swarmpack [--update-every 300] [--json]
 *
 * Exit codes: 0 after SIGINT/SIGTERM, 1 when the node cannot start or the first apply fails.
 */
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { createSwarmpack, type HookPackage, type NodeProgressEvents } from 'swarmpack'

const { values: flags } = parseArgs({
  options: {
    config: { type: 'string', default: 'swarmpack.json' },
    'data-dir': { type: 'string', default: '.swarmpack' },
    'update-every': { type: 'string', default: '300' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help === true) {
  console.log('usage: npm run node -- --config <file> --data-dir <dir> [--update-every <seconds>] [--json]')
  process.exit(0)
}

const say = (event: string, detail: Record<string, unknown>, text: string): void => {
  console.log(flags.json === true ? JSON.stringify({ event, ...detail }) : text)
}

/** What the host keeps of each loaded module: its `stop`, if it exported one. */
const running = new Map<string, { stop?: () => unknown }>()

const host = {
  load: async (pkg: HookPackage): Promise<void> => {
    if (pkg.entry === undefined) return
    // each version lives in its own immutable directory, so a new version is a new module URL
    const mod = await import(pathToFileURL(pkg.entry).href) as { start?: () => unknown, stop?: () => unknown }
    await mod.start?.()
    running.set(pkg.name, mod)
    say('loaded', { name: pkg.name, version: pkg.version }, `loaded ${pkg.name}@${pkg.version}`)
  },
  unload: async (pkg: HookPackage): Promise<void> => {
    await running.get(pkg.name)?.stop?.()
    running.delete(pkg.name)
    say('unloaded', { name: pkg.name, version: pkg.version }, `unloaded ${pkg.name}@${pkg.version}`)
  }
}

const onProgress = (evt: NodeProgressEvents): void => {
  if (evt.type === 'swarmpack:node:fetched') {
    const d = evt.detail as { name: string, version: string, bytes: { network: number, local: number } }
    say('fetched', d as unknown as Record<string, unknown>, `fetched ${d.name}@${d.version}: ${d.bytes.network} bytes from the network, ${d.bytes.local} already here`)
  }
}

const node = await createSwarmpack({ dataDir: flags['data-dir'], config: flags.config, host, onProgress }).catch((err: { code?: string, message: string }) => {
  say('error', { code: err.code, message: err.message }, `cannot start: ${err.code ?? ''} ${err.message}`)
  process.exit(1)
})
say('ready', { peerId: node.peer?.peerId.toString(), addresses: node.peer?.multiaddrs().map(String) ?? [] }, `node ${node.peer?.peerId.toString() ?? '(no peer)'} started; current generation loaded`)

// bring the deployment to the config now, then keep it current
try {
  const r = await node.apply()
  say('applied', { generation: r.generation, changed: r.changed }, r.changed ? `generation ${r.generation} in force` : 'up to date')
} catch (err) {
  say('error', { code: (err as { code?: string }).code, message: (err as Error).message }, `apply failed: ${(err as Error).message}`)
  await node.stop()
  process.exit(1)
}
const timer = setInterval(() => {
  node.update().then(
    r => { if (r.changed) say('updated', { generation: r.generation }, `updated to generation ${r.generation}`) },
    (err: Error & { code?: string }) => { say('error', { code: err.code, message: err.message }, `update failed (the running set stays): ${err.message}`) }
  )
}, Number(flags['update-every']) * 1000)

const stop = async (): Promise<void> => {
  clearInterval(timer)
  await node.stop()
  process.exit(0)
}
process.once('SIGINT', () => { void stop() })
process.once('SIGTERM', () => { void stop() })
