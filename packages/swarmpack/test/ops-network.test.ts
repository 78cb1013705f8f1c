/**
 * Network settings (S4), each set from the deployment config and seen at work: the DHT protocol
 * (private by default, the public IPFS one as an option; peers on different protocols never share
 * a routing table), listen and announce addresses (port forwarding), connection limits, and the
 * HTTP proxy (config and environment) through a real proxy process. Real libp2p peers on
 * 127.0.0.1, a real HTTP mirror.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { createInterface } from 'node:readline'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { IPFS_DHT_PROTOCOL, SWARMPACK_DHT_PROTOCOL } from '@swarmpack/dht-provider'
import { SwarmpackNodeErrorCode, type DeploymentConfigInput, type Swarmpack } from '../src/index.js'
import { World } from './helpers/world.js'
import { startStaticServer, waitFor, type StaticServer } from './helpers/ops.js'

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..')

async function freePort (): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

interface ProxyProcess { url: string, seen: string[], child: ChildProcess, close: () => Promise<void> }

/** http-provider's forward proxy, run as its own process. */
async function startProxyProcess (): Promise<ProxyProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=swarmpack-src', join(ROOT, 'packages/swarmpack/test/fixtures/proxy-process.mjs')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  const seen: string[] = []
  let url: string | undefined
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const msg = JSON.parse(line) as { url?: string, seen?: string }
    if (msg.url !== undefined) url = msg.url
    if (msg.seen !== undefined) seen.push(msg.seen)
  })
  await waitFor(() => url, 'the proxy process to listen', 60_000)
  return {
    url: url as string,
    seen,
    child,
    close: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
  }
}

describe('ops: network settings', () => {
  let w: World
  before(async () => {
    w = await World.create()
    await w.publish('a', '1.0.0')
    await w.pub.publishIndex()
  })
  after(async () => { await w.close() })

  const peerConfig = (sources: Record<string, unknown> = {}, network: Record<string, unknown> = { mode: 'loopback' }): Partial<DeploymentConfigInput> => ({
    sharing: 'share',
    network,
    sources: { directories: [{ path: w.pub.mirrorDir }], ...sources }
  })
  const boot = (n: Swarmpack): string[] => (n.peer?.multiaddrs() ?? []).map(String)

  it('DHT protocol: private by default, the public IPFS DHT as an option; different protocols never mix', async () => {
    const hub = await w.node('hub', {}, { followOnStart: false }, peerConfig())
    const ipfsHub = await w.node('ipfs-hub', {}, { followOnStart: false }, peerConfig({ dhtProtocol: 'ipfs' }))
    assert.equal((await hub.status()).peer?.dht.protocol, SWARMPACK_DHT_PROTOCOL)
    assert.equal((await ipfsHub.status()).peer?.dht.protocol, IPFS_DHT_PROTOCOL)
    assert.ok(!(ipfsHub.peer?.libp2p.getProtocols() ?? []).includes(SWARMPACK_DHT_PROTOCOL))

    const same = await w.node('ipfs-peer', {}, { followOnStart: false }, peerConfig({ dhtProtocol: 'ipfs', bootstrap: boot(ipfsHub) }))
    const other = await w.node('private-peer', {}, { followOnStart: false }, peerConfig({ bootstrap: boot(ipfsHub) }))
    await waitFor(() => (same.peer?.routingTableSize() ?? 0) >= 1, 'the IPFS-protocol peer to fill its routing table', 60_000)
    // status shows the routing table and when it was last refreshed (kad-dht's refresh walk)
    await same.peer?.dht.refreshRoutingTable()
    const refreshed = await waitFor(async () => (await same.status()).peer?.dht.lastRefresh, 'a routing table refresh to be recorded', 60_000)
    assert.ok(refreshed > Date.now() - 120_000 && refreshed <= Date.now())
    assert.equal((await same.status()).peer?.dht.routingTable, same.peer?.routingTableSize())
    // the private-DHT peer is connected to the IPFS hub (identify ran) yet has nobody in its table
    const hubId = ipfsHub.peer?.peerId.toString()
    await waitFor(async () => {
      const p = await other.peer?.libp2p.peerStore.get(ipfsHub.peer!.peerId).catch(() => undefined)
      return p !== undefined && p.protocols.length > 0
    }, 'identify between the private peer and the IPFS hub', 60_000)
    assert.ok(other.peer?.libp2p.getConnections().some(c => c.remotePeer.toString() === hubId))
    assert.equal(other.peer?.routingTableSize(), 0)
    const d = await other.doctor({ timeoutMs: 5000, sample: 4 })
    const dht = d.findings.find(f => f.check === 'dht')
    assert.equal(dht?.status, 'fail')
    assert.equal(dht?.code, SwarmpackNodeErrorCode.DHT_UNREACHABLE)
    assert.match(dht?.fix ?? '', /dhtProtocol/)
    assert.deepEqual(d.findings.filter(f => f.check === 'bootstrap').map(f => f.status), ['ok'], 'the bootstrap peer itself answers')
    const sd = await same.doctor({ timeoutMs: 10_000, sample: 4 })
    assert.equal(sd.findings.find(f => f.check === 'dht')?.status, 'ok', JSON.stringify(sd.findings))
  })

  it('doctor: a bootstrap peer that is gone, and the idle upkeep rate from the traffic samples', async () => {
    const hub = await w.node('upkeep-hub', {}, { followOnStart: false }, peerConfig())
    const gone = `/ip4/127.0.0.1/tcp/${await freePort()}/p2p/${hub.peer?.peerId.toString() ?? ''}`
    const node = await w.node('upkeep', {}, { followOnStart: false, upkeepSampleMs: 100 }, peerConfig({ bootstrap: [...boot(hub), gone] }))
    await waitFor(async () => (await node.status()).upkeep !== undefined, 'two traffic samples', 30_000)
    const d = await node.doctor({ timeoutMs: 3000, sample: 4 })
    const bootstrap = d.findings.filter(f => f.check === 'bootstrap')
    assert.deepEqual(bootstrap.map(f => f.status).sort(), ['fail', 'ok'])
    assert.equal(bootstrap.find(f => f.status === 'fail')?.code, SwarmpackNodeErrorCode.BOOTSTRAP_UNREACHABLE)
    const upkeep = d.findings.find(f => f.check === 'upkeep')
    assert.notEqual(upkeep?.status, 'skip')
    assert.ok(Number.isFinite(Number(upkeep?.details?.bytesPerSec)) && Number(upkeep?.details?.bytesPerSec) >= 0, JSON.stringify(upkeep))
    const measured = await node.doctor({ upkeepMs: 500, sample: 4, timeoutMs: 3000 })
    assert.ok(Number(measured.findings.find(f => f.check === 'upkeep')?.details?.seconds) >= 0)
  })

  it('listen and announce addresses (port forwarding)', async () => {
    const port = await freePort()
    const announce = '/ip4/203.0.113.7/tcp/40001'
    const node = await w.node('forwarded', {}, { followOnStart: false }, peerConfig({}, { mode: 'lan', mdns: false, listen: [`/ip4/127.0.0.1/tcp/${port}`], announce: [announce] }))
    const s = await node.status()
    const id = node.peer?.peerId.toString() as string
    assert.deepEqual(s.peer?.addresses, [`${announce}/p2p/${id}`])
    assert.ok(s.peer?.listening.some(a => a === `/ip4/127.0.0.1/tcp/${port}`), JSON.stringify(s.peer?.listening))
    assert.deepEqual(s.peer?.announce, [announce])
    const d = await node.doctor({ sample: 4 })
    assert.equal(d.findings.find(f => f.check === 'listen')?.status, 'ok')
    // a peer dialling the real port learns the announced address, not the bound one
    const dialer = await w.node('dialer', {}, { followOnStart: false }, peerConfig({ bootstrap: [`/ip4/127.0.0.1/tcp/${port}/p2p/${id}`] }, { mode: 'lan', mdns: false }))
    const learned = await waitFor(async () => {
      const p = await dialer.peer?.libp2p.peerStore.get(node.peer!.peerId).catch(() => undefined)
      return p?.addresses.some(a => a.multiaddr.toString() === announce) === true ? p : undefined
    }, 'identify to carry the announced address', 60_000)
    assert.ok(learned.addresses.some(a => a.multiaddr.toString() === announce))
    // the same port again cannot be bound: a typed error, nothing left running
    await assert.rejects(w.node('clash', {}, { followOnStart: false }, peerConfig({}, { mode: 'lan', mdns: false, listen: [`/ip4/127.0.0.1/tcp/${port}`] })), (err: any) => err.code === SwarmpackNodeErrorCode.LISTEN_NOT_BOUND)
  })

  it('connection limits: a hub with maxConnections 3 keeps at most 3 of 6 peers', async () => {
    const hub = await w.node('limited', {}, { followOnStart: false }, peerConfig({}, { mode: 'lan', mdns: false, maxConnections: 3 }))
    const peers: Swarmpack[] = []
    for (let i = 0; i < 6; i++) peers.push(await w.node(`dialer-${i}`, {}, { followOnStart: false }, peerConfig({ bootstrap: boot(hub) }, { mode: 'lan', mdns: false })))
    const dialled = peers.filter(p => p.peer?.libp2p.getConnections().some(c => c.remotePeer.equals(hub.peer!.peerId))).length
    await waitFor(() => (hub.peer?.libp2p.getConnections().length ?? 99) <= 3, 'the hub to hold at most 3 connections', 60_000)
    const s = await hub.status()
    assert.equal(s.peer?.maxConnections, 3)
    assert.ok((s.peer?.connections ?? 99) <= 3, `hub has ${s.peer?.connections} connections (${dialled} peers had connected at some point)`)
  })
})

describe('ops: HTTP proxy from the config and the environment', () => {
  let w: World
  let mirror: StaticServer
  let proxy: ProxyProcess
  before(async () => {
    w = await World.create()
    await w.publish('a', '1.0.0')
    await w.pub.publishIndex()
    mirror = await startStaticServer(w.pub.mirrorDir)
    proxy = await startProxyProcess()
  })
  after(async () => {
    await w?.close()
    await mirror?.close()
    await proxy?.close()
  })

  const viaMirror = (extra: Record<string, unknown> = {}): Partial<DeploymentConfigInput> => ({ sources: { mirrors: [{ url: mirror.url }] }, ...extra })
  // undici tunnels every proxied request (also http://) with CONNECT host:port
  const through = (from: number): string[] => proxy.seen.slice(from).filter(s => s === `CONNECT ${new URL(mirror.url).host}` || s.startsWith(`GET ${mirror.url}`))

  it('network.proxy sends every mirror request (heads and blocks) through the proxy', async () => {
    const from = proxy.seen.length
    const node = await w.node('config-proxy', { a: '^1.0.0' }, {}, viaMirror({ network: { proxy: proxy.url } }))
    await node.apply()
    // the head reader and the block provider each open their own tunnel
    const seen = through(from)
    assert.ok(seen.length >= 2, JSON.stringify(proxy.seen.slice(from)))
    assert.ok(mirror.requests.some(r => r.includes('/indexes/test-index/head')) && mirror.requests.some(r => !r.includes('/indexes/')), JSON.stringify(mirror.requests))
    assert.equal((await node.current())?.packages.a.version, '1.0.0')
  })

  it('HTTP_PROXY from the environment is used; network.proxy false overrides it', async () => {
    const saved = process.env.HTTP_PROXY
    process.env.HTTP_PROXY = proxy.url
    try {
      let from = proxy.seen.length
      const env = await w.node('env-proxy', { a: '^1.0.0' }, {}, viaMirror())
      await env.apply()
      assert.ok(through(from).length >= 2, JSON.stringify(proxy.seen.slice(from)))
      from = proxy.seen.length
      const direct = await w.node('no-proxy', { a: '^1.0.0' }, {}, viaMirror({ network: { proxy: false } }))
      const before = mirror.requests.length
      await direct.apply()
      assert.ok(mirror.requests.length > before, 'the mirror was asked directly')
      assert.deepEqual(through(from), [], 'nothing went through the proxy')
    } finally {
      if (saved === undefined) delete process.env.HTTP_PROXY
      else process.env.HTTP_PROXY = saved
    }
  })
})
