/**
 * One swarm peer for the namespace harness (a child process, usually inside a namespace). It runs
 * a swarmpack peer (createSwarmpackPeer) with a SwarmNode over an on-disk FsBlockstore, prints
 * JSON lines on stdout and takes commands on stdin.
 *
 *   peer.ts --data-dir <dir> [--listen <ma>] [--bootstrap <ma>]... [--announce <ma>]... [--mode share|consume]
 *           [--seed <dir>] [--report-ms 500] [--network lan|internet] [--mdns]
 *           [--relay-client] [--relay-server] [--autonat] [--upnp <gateway address or ''>] [--announce-when-complete]
 *
 * Events: ready {peerId, multiaddrs}, seeded {root, bytes}, traffic {t, sent, received, cpuMs} every
 * report-ms, fetched {root, bytes, blocks, ms, sources, messagesSent, messagesReceived, duplicateBlocks}, verified {root, blocks, bytes, corrupt},
 * peers {peers}, error {command, code, message}.
 * Commands: `fetch <root> [peerId...]` (peers asked from the start besides the DHT's providers), `announce <root>`,
 * `dial <ma>`, `hangup <peerId>` (close every connection to it), `verify <root>`, `peers`, `quit`.
 */
import '@swarmpack/core/polyfill'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { FsBlockstore, blockLinks, pack, parseCid, verifyBlock, type CID } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer, type NetworkMode } from '@swarmpack/dht-provider'
import { emit, readCommands } from './commands.js'

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    listen: { type: 'string', multiple: true },
    bootstrap: { type: 'string', multiple: true },
    announce: { type: 'string', multiple: true },
    mode: { type: 'string', default: 'share' },
    seed: { type: 'string' },
    'report-ms': { type: 'string', default: '500' },
    network: { type: 'string', default: 'lan' },
    mdns: { type: 'boolean', default: false },
    'relay-client': { type: 'boolean', default: false },
    'relay-server': { type: 'boolean', default: false },
    autonat: { type: 'boolean', default: false },
    // UPnP port mapping / IPv6 pinhole on the router; the value, if any, is the gateway's external address
    upnp: { type: 'string' },
    // the behaviour before early announcements: a baseline for the DHT discovery figure
    'announce-when-complete': { type: 'boolean', default: false },
    json: { type: 'boolean' }
  }
})
const out = emit
const t0 = Date.now()

const store = await FsBlockstore.open(join(values['data-dir']!, 'store'), { fsync: false })
const peer = await createSwarmpackPeer({
  dataDir: values['data-dir'],
  listen: values.listen ?? ['/ip4/0.0.0.0/tcp/4001'],
  bootstrap: values.bootstrap ?? [],
  ...(values.announce !== undefined ? { announce: values.announce } : {}),
  network: values.network as NetworkMode,
  // every peer of a lab swarm shares one subnet: don't rate-limit inbound connections per IP
  inboundConnectionThreshold: 1000,
  mdns: values.mdns,
  // a lab relay carries whole transfers (no default limits)
  nat: { relayClient: values['relay-client'], relayServer: values['relay-server'] === true ? { unlimited: true } : false, autonat: values.autonat, ...(values.upnp !== undefined ? { upnp: values.upnp === '' ? true : { externalAddress: values.upnp } } : {}) }
})
const late = values['announce-when-complete'] === true
const node = await createSwarmNode({ peer, blockstore: store, mode: values.mode as 'share' | 'consume', ...(late ? { announceWhileFetching: false, rediscover: false } : {}) })

if (values.seed !== undefined) {
  const r = await pack(values.seed, { name: 'bench-pkg', version: '1.0.0' }, { blockstore: store })
  await store.pin('bench-pkg@1.0.0', r.root)
  out({ event: 'seeded', root: r.root.toString(), bytes: r.totalSize, blocks: r.blocks })
  void node.announce(r.root).then(ok => { out({ event: 'announced', root: r.root.toString(), ok }) })
}

out({ event: 'ready', peerId: peer.peerId.toString(), multiaddrs: peer.multiaddrs().map(String), ms: Date.now() - t0 })

const report = Number(values['report-ms'])
if (report > 0) {
  setInterval(() => {
    const tr = peer.traffic?.totals()
    const cpu = process.cpuUsage()
    out({ event: 'traffic', t: Date.now(), sent: tr?.sent ?? 0, received: tr?.received ?? 0, cpuMs: Math.round((cpu.user + cpu.system) / 1000), peers: peer.libp2p.getPeers().length, routingTable: peer.routingTableSize() })
  }, report).unref()
}

/** Re-reads every block the root reaches from the store and checks it against its CID. */
async function verify (root: CID): Promise<{ blocks: number, bytes: number, corrupt: number }> {
  const queue: CID[] = [root]
  let blocks = 0
  let bytes = 0
  let corrupt = 0
  for (let cid = queue.shift(); cid !== undefined; cid = queue.shift()) {
    const b = await store.getBytes(cid)
    blocks++
    bytes += b.byteLength
    try { await verifyBlock(cid, b) } catch { corrupt += b.byteLength }
    queue.push(...blockLinks(cid, b))
  }
  return { blocks, bytes, corrupt }
}

/**
 * AutoNAT's dial-back tallies for addresses still undecided ({addr, success, failure}); read from
 * the service's internal `dialResults` map (no public accessor): a failed dial-back shows here,
 * since @libp2p/autonat-v2 only withdraws an address after 8 failures from distinct network segments
 * (first byte of IPv4, first 16 bits of IPv6).
 */
function autonatTallies (): Array<{ addr: string, success: number, failure: number }> | undefined {
  const svc = (peer.libp2p.services as Record<string, unknown>).autoNAT as { client?: { dialResults?: Map<string, { success: number, failure: number }> } } | undefined
  const results = svc?.client?.dialResults
  if (results === undefined) return undefined
  return [...results.entries()].map(([addr, r]) => ({ addr, success: r.success, failure: r.failure }))
}

async function run (cmd: string, args: string[]): Promise<void> {
  if (cmd === 'fetch') {
    const root = parseCid(args[0])
    const peers = args.slice(1).map(p => peerIdFromString(p))
    const started = Date.now()
    const r = await node.fetch(root, { peers, pin: `fetched:${args[0]}` })
    const bs = node.bitswap.stats()
    out({ event: 'fetched', root: args[0], bytes: r.bytes, blocks: r.blocks, ms: Date.now() - started, at: Date.now(), sources: r.sources.map(s => ({ peer: s.peer, bytes: s.bytes, blocks: s.blocks })), messagesSent: bs.messagesSent, messagesReceived: bs.messagesReceived, duplicateBlocks: bs.duplicateBlocks, entriesReceived: bs.entriesReceived })
  } else if (cmd === 'announce') {
    out({ event: 'announced', root: args[0], ok: await node.announce(parseCid(args[0])) })
  } else if (cmd === 'dial') {
    const c = await peer.libp2p.dial(multiaddr(args[0]))
    out({ event: 'dialed', addr: args[0], remoteAddr: c.remoteAddr.toString() })
  } else if (cmd === 'hangup') {
    await peer.libp2p.hangUp(peerIdFromString(args[0]))
    out({ event: 'hungup', peer: args[0] })
  } else if (cmd === 'verify') {
    out({ event: 'verified', root: args[0], ...await verify(parseCid(args[0])) })
  } else if (cmd === 'peers') {
    out({
      event: 'peers',
      peers: peer.libp2p.getPeers().map(String),
      connections: peer.libp2p.getConnections().map(c => ({ peer: c.remotePeer.toString(), addr: c.remoteAddr.toString(), limited: c.limits !== undefined, direction: c.direction })),
      addresses: peer.libp2p.getMultiaddrs().map(String),
      // every address with its verified flag (what AutoNAT concluded), and AutoNAT's pending tallies
      addressStatus: peer.addressStatus(),
      autonat: autonatTallies(),
      routingTable: peer.routingTableSize()
    })
  } else {
    throw new Error(`unknown command ${cmd}`)
  }
}

readCommands(run, async () => {
  const tr = peer.traffic?.totals()
  out({ event: 'stopping', sent: tr?.sent ?? 0, received: tr?.received ?? 0 })
  await node.stop().catch(() => {})
  await peer.stop().catch(() => {})
  await store.close().catch(() => {})
})
