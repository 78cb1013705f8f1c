/**
 * The swarm tests' low-level peer (formerly examples/node.ts): one libp2p peer and block store,
 * driven by flags and stdin commands, printing JSON lines. It works below the node (no config,
 * trust or installs), which is what the DHT and Bitswap tests exercise. Users run `swarmpack serve`
 * (packages/cli) and hosts embed `createSwarmpack` (examples/node.ts).
 *
 *   node --import tsx --conditions=swarmpack-src test/helpers/swarm-peer.ts --data-dir ./peer-a --listen /ip4/0.0.0.0/tcp/4001
 *   node --import tsx --conditions=swarmpack-src test/helpers/swarm-peer.ts --data-dir ./peer-b --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3... --fetch bafy...
 *   node --import tsx --conditions=swarmpack-src test/helpers/swarm-peer.ts --config peer.json --json
 *
 * Flags (each overrides the same key of the JSON config file):
 *   --config <file>          JSON: { dataDir, listen[], announce[], bootstrap[], mode, mirror[], network,
 *                            dhtProtocol, maxConnections, storeMaxSize, fsync }
 *   --data-dir <dir>         peer key and block store (default ./swarmpack-node)
 *   --listen <ma>            listen address (repeatable)
 *   --announce-addr <ma>     address announced to peers instead (repeatable; port forwarding)
 *   --bootstrap <ma>         peer to join through, with /p2p/<id> (repeatable)
 *   --mode consume|share|mirror   sharing mode (default share)
 *   --mirror <cid>           mirror mode: root to fetch, pin and serve (repeatable)
 *   --network internet|lan|loopback   address filtering of the DHT (default lan)
 *   --dht-protocol swarmpack|ipfs|<id>
 *   --fetch <cid>            fetch a package at start (repeatable)
 *   --add <dir>              pack a directory into the store and announce it
 *   --exit                   exit after the --fetch/--add work is done
 *   --json                   machine-readable output: one JSON object per line
 *   --progress-interval <ms> least time between two progress lines (default 250; 0 = every block)
 *
 * Commands on stdin, one per line:
 *   fetch <cid> [unpack-dir] [--peer <peer-id>]...   (--peer: ask this peer from the start too)
 *   add <dir> [name] [version]   announce <cid>   withdraw <cid>   pin <name> <cid>   unpin <name>
 *   providers <cid>            look the providers of a CID up in the DHT (waits 2 s for more after the first)
 *   head <indexer-key-id>      resolve an indexer's signed index head (trust's head envelope) in the DHT
 *   status                     quit
 */
import '@swarmpack/core/polyfill'
import { readFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { FsBlockstore, SwarmpackError, pack, parseCid, unpack } from '@swarmpack/core'
import { openIndexHead } from '@swarmpack/trust'
import { indexHeadRecordFormat } from 'swarmpack'
import { SHARING_MODES, createSwarmNode, findProviders, parsePeerId, getHeadRecords, indexHeadKey, createSwarmpackPeer, type DhtProgressEvents, type FetchResult, type NetworkMode, type SharingMode, type SwarmNode, type SwarmpackPeer } from '@swarmpack/dht-provider'

interface NodeConfig {
  dataDir?: string
  listen?: string[]
  announce?: string[]
  bootstrap?: string[]
  mode?: SharingMode
  mirror?: string[]
  network?: NetworkMode
  dhtProtocol?: string
  maxConnections?: number
  storeMaxSize?: number
  fsync?: boolean
}

const { values: flags } = parseArgs({
  options: {
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    listen: { type: 'string', multiple: true },
    'announce-addr': { type: 'string', multiple: true },
    bootstrap: { type: 'string', multiple: true },
    mode: { type: 'string' },
    mirror: { type: 'string', multiple: true },
    network: { type: 'string' },
    'dht-protocol': { type: 'string' },
    fetch: { type: 'string', multiple: true },
    add: { type: 'string', multiple: true },
    exit: { type: 'boolean', default: false },
    'progress-interval': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  },
  strict: true
})

const json = flags.json === true
const progressInterval = Number(flags['progress-interval'] ?? 250)
function emit (event: string, data: Record<string, unknown>, text?: string): void {
  if (json) process.stdout.write(JSON.stringify({ event, ...data }) + '\n')
  else if (text !== undefined) process.stdout.write(text + '\n')
}
function fail (err: unknown, command?: string): void {
  const e = err as SwarmpackError
  if (!json && process.env.DEBUG !== undefined) console.error(e)
  emit('error', { code: e.code ?? 'ERR_UNKNOWN', message: e.message, command }, `error${command !== undefined ? ` (${command})` : ''}: ${e.code ?? ''} ${e.message}`)
}

if (flags.help === true) {
  const text = await readFile(new URL(import.meta.url), 'utf8')
  process.stdout.write(text.slice(text.indexOf('/**') + 3, text.indexOf('*/')).replace(/^ \* ?/gm, '') + '\n')
  process.exit(0)
}

async function loadConfig (): Promise<NodeConfig> {
  let fromFile: NodeConfig = {}
  if (flags.config !== undefined) {
    try {
      fromFile = JSON.parse(await readFile(flags.config, 'utf8')) as NodeConfig
    } catch (err) {
      throw new SwarmpackError('ERR_DHT_INVALID_CONFIG', `cannot read config ${flags.config}: ${(err as Error).message}`, { cause: err })
    }
    if (fromFile === null || typeof fromFile !== 'object' || Array.isArray(fromFile)) throw new SwarmpackError('ERR_DHT_INVALID_CONFIG', `config ${flags.config} is not a JSON object`)
  }
  const mode = (flags.mode ?? fromFile.mode ?? 'share') as SharingMode
  if (!SHARING_MODES.includes(mode)) throw new SwarmpackError('ERR_DHT_INVALID_CONFIG', `unknown mode ${mode} (consume, share, mirror)`)
  return {
    ...fromFile,
    dataDir: flags['data-dir'] ?? fromFile.dataDir ?? './swarmpack-node',
    listen: flags.listen ?? fromFile.listen,
    announce: flags['announce-addr'] ?? fromFile.announce,
    bootstrap: flags.bootstrap ?? fromFile.bootstrap ?? [],
    mode,
    mirror: flags.mirror ?? fromFile.mirror ?? [],
    network: (flags.network ?? fromFile.network ?? 'lan') as NetworkMode,
    dhtProtocol: flags['dht-protocol'] ?? fromFile.dhtProtocol
  }
}

let peer: SwarmpackPeer | undefined
let store: FsBlockstore | undefined
let node: SwarmNode | undefined
let stopping: Promise<void> | undefined
const headFormat = indexHeadRecordFormat()

async function shutdown (code: number): Promise<never> {
  stopping ??= (async () => {
    emit('stopping', {}, 'stopping...'); if (process.env.SWARMPACK_DEBUG_STOP !== undefined) console.error(new Error('shutdown').stack)
    await node?.stop().catch(() => {})
    await peer?.stop().catch(() => {})
    await store?.close().catch(() => {})
  })()
  await stopping
  process.exit(code)
}

function progressPrinter (label: string): (evt: DhtProgressEvents) => void {
  let blocks = 0
  let bytes = 0
  let lastPrint = 0
  return (evt) => {
    if (evt.type === 'swarmpack:dht:providers') {
      emit('providers', { cid: evt.detail.cid.toString(), peers: evt.detail.peers }, `${label}: providers ${evt.detail.peers.join(', ')}`)
    } else if (evt.type === 'swarmpack:provider:block') {
      blocks++
      bytes += evt.detail.size
      const now = Date.now()
      if (now - lastPrint >= progressInterval) {
        lastPrint = now
        emit('progress', { root: label, blocks, bytes, source: evt.detail.source }, `${label}: ${blocks} blocks, ${(bytes / 1048576).toFixed(1)} MiB (last from ${evt.detail.source})`)
      }
    } else if (evt.type === 'swarmpack:provider:retry') {
      emit('retry', { cid: evt.detail.cid.toString(), source: evt.detail.source, message: evt.detail.error.message }, `${label}: retrying a block (${evt.detail.source}: ${evt.detail.error.message})`)
    }
  }
}

function reportFetched (r: FetchResult): void {
  const mibps = r.bytes / 1048576 / Math.max(r.ms / 1000, 0.001)
  const sources = r.sources.map(s => ({ ...s, share: r.bytes > 0 ? s.bytes / r.bytes : 0 }))
  emit('fetched', { root: r.root.toString(), blocks: r.blocks, bytes: r.bytes, localBlocks: r.localBlocks, ms: r.ms, mibps, sources },
    `fetched ${r.root.toString()}: ${r.blocks} blocks, ${(r.bytes / 1048576).toFixed(2)} MiB in ${r.ms} ms (${mibps.toFixed(1)} MiB/s)\n` +
    sources.map(s => `  ${s.peer}: ${s.blocks} blocks, ${(s.share * 100).toFixed(1)}%`).join('\n') +
    (r.localBlocks > 0 ? `\n  local: ${r.localBlocks} blocks` : ''))
}

async function fetchRoot (args: string[]): Promise<void> {
  // fetch <cid> [unpack-dir] [--peer <peer-id>]...
  const peers = args.flatMap((a, i) => args[i - 1] === '--peer' ? [parsePeerId(a)] : [])
  const [text = '', target] = args.filter((a, i) => a !== '--peer' && args[i - 1] !== '--peer')
  const root = parseCid(text)
  // a fetch right after start waits until the node has joined the DHT
  if (peer!.routingTableSize() === 0) await peer!.waitForRoutingTable(1, { timeout: 30_000 })
  const result = await node!.fetch(root, { peers, onProgress: progressPrinter(text.slice(0, 16)) })
  reportFetched(result)
  if (target !== undefined) {
    const out = await unpack(root, { get: async (cid, o) => store!.getBytes(cid, o ?? {}) }, resolve(target))
    emit('unpacked', { root: text, dir: resolve(target), files: (out as { files?: number }).files }, `unpacked into ${resolve(target)}`)
  }
}

async function addDir (dir: string, name?: string, version?: string): Promise<void> {
  const result = await pack(resolve(dir), { name: name ?? basename(resolve(dir)).toLowerCase().replace(/[^a-z0-9-]/g, '-'), version: version ?? '0.1.0' }, { blockstore: store! })
  await store!.pin(`${result.manifest.name}@${result.manifest.version}`, result.root)
  const announced = await node!.announce(result.root)
  emit('added', { root: result.root.toString(), name: result.manifest.name, version: result.manifest.version, bytes: result.totalSize, blocks: result.blocks, announced },
    `added ${result.manifest.name}@${result.manifest.version} as ${result.root.toString()} (${result.blocks} blocks${announced ? ', announced' : ''})`)
}

function status (): Record<string, unknown> {
  const t = peer!.traffic?.totals()
  return {
    peerId: peer!.peerId.toString(),
    mode: node!.mode,
    connections: peer!.libp2p.getConnections().length,
    routingTable: peer!.routingTableSize(),
    announced: node!.announcer.roots().map(String),
    store: store!.stats(),
    bitswap: (({ peers: _p, ...rest }) => rest)(node!.bitswap.stats()),
    traffic: t
  }
}

async function runCommand (line: string): Promise<void> {
  const [cmd, ...args] = line.trim().split(/\s+/)
  if (cmd === undefined || cmd === '') return
  try {
    switch (cmd) {
      case 'fetch': await fetchRoot(args); break
      case 'providers': {
        const found = await findProviders(peer!.dht, parseCid(args[0] ?? ''), { self: peer!.peerId, settle: 2000, timeout: 20_000 })
        const ids = found.map(p => p.id.toString())
        emit('found-providers', { cid: args[0], peers: ids }, `providers of ${args[0]}: ${ids.join(', ')}`)
        break
      }
      case 'add': await addDir(args[0] ?? '.', args[1], args[2]); break
      case 'announce': emit('announced', { root: args[0], ok: await node!.announce(parseCid(args[0] ?? '')) }, `announced ${args[0]}`); break
      case 'withdraw': await node!.withdraw(parseCid(args[0] ?? '')); emit('withdrawn', { root: args[0] }, `withdrew ${args[0]}`); break
      case 'pin': await store!.pin(args[0] ?? '', parseCid(args[1] ?? '')); await node!.syncPins(); emit('pinned', { name: args[0], root: args[1] }, `pinned ${args[0]}`); break
      case 'unpin': await store!.unpin(args[0] ?? ''); await node!.syncPins(); emit('unpinned', { name: args[0] }, `unpinned ${args[0]}`); break
      case 'head': {
        const [best] = await getHeadRecords(peer!.dht, indexHeadKey(args[0] ?? ''), headFormat, { signal: AbortSignal.timeout(20_000) })
        const head = openIndexHead(best.value)
        emit('head', { indexer: head.indexer, signer: head.signer, version: head.version, index: head.index.toString(), expires: head.expires },
          `index head of ${head.indexer} (${head.signer}): version ${head.version}, index ${head.index.toString()}, expires ${new Date(head.expires).toISOString()}`)
        break
      }
      case 'status': { const s = status(); emit('status', s, JSON.stringify(s, null, 2)); break }
      case 'quit': case 'exit': await shutdown(0); break
      default: emit('error', { code: 'ERR_UNKNOWN_COMMAND', message: `unknown command ${cmd}`, command: line }, `unknown command ${cmd} (fetch, add, announce, withdraw, pin, unpin, providers, head, status, quit)`)
    }
  } catch (err) {
    failures++
    fail(err, line)
  }
}

/** Commands that failed: with --exit, any failure makes the exit code 1. */
let failures = 0

process.on('SIGINT', () => { void shutdown(0) })
process.on('SIGTERM', () => { void shutdown(0) })

try {
  const config = await loadConfig()
  const dataDir = resolve(config.dataDir!)
  store = await FsBlockstore.open(join(dataDir, 'store'), {
    ...(config.storeMaxSize !== undefined ? { maxSize: config.storeMaxSize } : {}),
    ...(config.fsync !== undefined ? { fsync: config.fsync } : {})
  })
  peer = await createSwarmpackPeer({
    dataDir,
    ...(config.listen !== undefined ? { listen: config.listen } : {}),
    ...(config.announce !== undefined ? { announce: config.announce } : {}),
    bootstrap: config.bootstrap,
    network: config.network,
    ...(config.dhtProtocol !== undefined ? { dhtProtocol: config.dhtProtocol } : {}),
    ...(config.maxConnections !== undefined ? { maxConnections: config.maxConnections } : {}),
    // index heads in the DHT are trust's signed head envelopes; this peer stores and serves them
    headRecords: headFormat
  })
  node = await createSwarmNode({ peer, blockstore: store, mode: config.mode, mirrorRoots: (config.mirror ?? []).map(parseCid) })
  const multiaddrs = peer.multiaddrs().map(String)
  emit('ready', { peerId: peer.peerId.toString(), multiaddrs, mode: node.mode, dataDir, pid: process.pid },
    `swarmpack node ${peer.peerId.toString()} (${node.mode})\n` + multiaddrs.map(a => `  listening on ${a}`).join('\n'))
} catch (err) {
  fail(err, 'start')
  await shutdown(1)
}

const startup: Array<Promise<void>> = []
for (const dir of flags.add ?? []) startup.push(runCommand(`add ${dir}`))
for (const cid of flags.fetch ?? []) startup.push(runCommand(`fetch ${cid}`))
if (flags.exit === true) {
  await Promise.all(startup)
  await node?.mirrored()
  await shutdown(failures > 0 ? 1 : 0)
}

const rl = createInterface({ input: process.stdin })
let queue = Promise.resolve()
rl.on('line', (line) => { queue = queue.then(async () => runCommand(line)) })
