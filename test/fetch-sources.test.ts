/**
 * The resolver's multi-source fetcher with real processes: a swarm (hub + one seed, test/helpers/swarm-peer.ts),
 * nginx serving an exported mirror, small real HTTP servers that misbehave, and a fetching process
 * (test/helpers/fetch-client.ts) composing the swarm and the mirrors. Covers: peers only (the mirror
 * gets no request), a mirror answering 503 while peers serve, mirror only, a corrupting mirror
 * banned, no reachable source (typed error within the bound), SIGKILL of the fetching process and
 * a restart that fetches only what is missing, the only peer SIGKILLed mid-transfer with the
 * mirror finishing the package, and then (the DHT still naming the dead peer, no mirror) the typed
 * error within the bound: the fetch never hangs.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsBlockstore, encodeCborBlock, listManifestCids, mirrorBlockPath, parseCid, storeProvider, unpack } from '@swarmpack/core'
import { exportHttpMirror } from '@swarmpack/http-provider'
import { NGINX, startNginx, type TestNginx } from '../packages/http-provider/test/helpers/nginx.js'
import { startServer, type TestServer } from '../packages/http-provider/test/helpers/servers.js'
import { FAULTY_PEER_SCRIPT, ROOT, hashTree, seedDataDir, startNode, stopAll, writePackageDir, type ChildPeer, type NodeEvent } from './helpers/swarm.js'

const SIZE = 32 * 1024 * 1024
const CLIENT = join(ROOT, 'test/helpers/fetch-client.ts')
const skip = NGINX === undefined ? 'nginx is not installed (apt-get install -y nginx-light)' : false

describe('multi-source fetch: swarm + HTTP mirrors', { skip, timeout: 600_000 }, () => {
  let dir: string
  let root: string
  let expected: Record<string, string>
  let totalBlocks: number
  let nginx: TestNginx
  let corruptNginx: TestNginx
  let hub: ChildPeer
  let seed: ChildPeer
  const procs: ChildPeer[] = []
  const servers: Array<TestServer | TestNginx> = []
  const common = ['--network', 'loopback', '--listen', '/ip4/127.0.0.1/tcp/0']

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-fetch-sources-'))
    await writePackageDir(join(dir, 'content'), SIZE, 'fetch-sources')
    expected = await hashTree(join(dir, 'content'))
    root = (await seedDataDir(join(dir, 'seed'), join(dir, 'content'))).root.toString()
    const store = await FsBlockstore.open(join(dir, 'seed', 'store'), { fsync: false })
    totalBlocks = (await listManifestCids(parseCid(root), storeProvider(store))).length
    await exportHttpMirror(store, [parseCid(root)], join(dir, 'mirror'), { fsync: false })
    await store.close()
    // a second mirror with one chunk corrupted on disk
    await cp(join(dir, 'mirror'), join(dir, 'mirror-corrupt'), { recursive: true })
    const chunk = (await listManifestCids(parseCid(root), { get: async (cid) => readFile(join(dir, 'mirror', mirrorBlockPath(cid))) })).find(c => c.code === 0x55)!
    const path = join(dir, 'mirror-corrupt', mirrorBlockPath(chunk))
    const bytes = await readFile(path)
    bytes[bytes.byteLength >> 1] ^= 0x01
    await writeFile(path, bytes)
    nginx = (await startNginx(join(dir, 'mirror')))!
    corruptNginx = (await startNginx(join(dir, 'mirror-corrupt')))!
    servers.push(nginx, corruptNginx)
    hub = await startNode('hub', [...common, '--data-dir', join(dir, 'hub')])
    seed = await startNode('seed', [...common, '--bootstrap', hub.multiaddrs[0], '--data-dir', join(dir, 'seed')])
    procs.push(hub, seed)
  })

  after(async () => {
    await stopAll(procs)
    for (const s of servers) await s.close().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  /** A real HTTP server in front of nginx that counts requests and answers each `delayMs` late. */
  async function nginxFront (delayMs: number): Promise<TestServer> {
    const front = await startServer((req, res) => {
      setTimeout(() => {
        fetch(new URL((req.url ?? '/').slice(1), nginx.url), { method: req.method }).then(async r => {
          const body = Buffer.from(await r.arrayBuffer())
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream', 'content-length': body.byteLength }).end(body)
        }, () => { res.writeHead(502).end() })
      }, delayMs)
    })
    servers.push(front)
    return front
  }

  /** Starts a fetching process; with `swarm`, joins through the hub and waits for its routing table. */
  async function client (name: string, args: string[], swarm: boolean): Promise<ChildPeer> {
    const c = await startNode(name, ['--data-dir', join(dir, name), ...(swarm ? ['--bootstrap', hub.multiaddrs[0]] : []), ...args], { script: CLIENT })
    procs.push(c)
    if (swarm) {
      for (let i = 0; ; i++) {
        const r = await c.command('status', 'status')
        if (r.routingTable >= 2) break
        assert.ok(i < 150, 'routing table did not fill')
        await new Promise(resolve => setTimeout(resolve, 200))
      }
    }
    return c
  }

  async function fetchWith (c: ChildPeer, policy?: string, timeout = 120_000): Promise<NodeEvent> {
    return c.command(`fetch ${root}${policy !== undefined ? ` ${policy}` : ''}`, 'fetched', timeout)
  }

  async function failedFetch (c: ChildPeer, command: string, timeout: number): Promise<NodeEvent> {
    const ended = c.next(e => e.event === 'fetched' || e.event === 'error', timeout, 'the fetch to end')
    c.send(command)
    const e = await ended
    assert.equal(e.event, 'error', 'the fetch was expected to fail')
    return e
  }

  /** Stops the client (its store is locked while it runs) and checks the package it stored. */
  async function assertIntact (c: ChildPeer): Promise<void> {
    await c.stop()
    const store = await FsBlockstore.open(join(dir, c.name, 'store'), { fsync: false })
    try {
      await unpack(parseCid(root), storeProvider(store), join(dir, `${c.name}-out`))
    } finally {
      await store.close()
    }
    assert.deepEqual(await hashTree(join(dir, `${c.name}-out`)), expected)
  }

  const share = (e: NodeEvent, source: string): number =>
    (e.result.sources as Array<{ source: string, bytes: number }>).filter(s => s.source.startsWith(source)).reduce((n, s) => n + s.bytes, 0)

  it('peers-only: everything from the swarm, not one request to the mirror', async () => {
    const counting = await nginxFront(0)
    const c = await client('peers-only', ['--mirror', counting.url], true)
    const done = await fetchWith(c, 'peers-only')
    assert.deepEqual(counting.requests, [], 'the mirror server received no request')
    assert.deepEqual(done.httpRequests, [0], 'the HTTP provider sent none')
    assert.equal(done.result.blocks.network, totalBlocks)
    assert.equal(share(done, 'http:'), 0)
    const start = c.events.find(e => e.event === 'start')!
    assert.equal(start.totalBlocks, totalBlocks)
    assert.equal(start.totalBytes, done.result.bytes.total, 'the total known up front is what arrived')
    await assertIntact(c)
  })

  it('a mirror answering 503 while the peer serves: the package comes from the peer', async () => {
    const unavailable = await startServer((_req, res) => { res.writeHead(503).end('down for maintenance') })
    servers.push(unavailable)
    const c = await client('mirror-503', ['--mirror', unavailable.url], true)
    const done = await fetchWith(c, 'race')
    assert.ok(unavailable.requests.length > 0, 'the mirror was asked (race)')
    assert.equal(share(done, 'http:'), 0)
    assert.equal(done.result.blocks.network, totalBlocks)
    await assertIntact(c)
  })

  it('mirror only: no swarm at all, the package comes from nginx', async () => {
    const c = await client('mirror-only', ['--mirror', nginx.url], false)
    const done = await fetchWith(c)
    assert.equal(share(done, 'dht'), 0)
    assert.equal(done.result.blocks.network, totalBlocks)
    await assertIntact(c)
  })

  it('a mirror serving a corrupted block is banned; the package arrives intact from the other', async () => {
    const c = await client('corrupt', ['--mirror', corruptNginx.url, '--mirror', nginx.url], false)
    const done = await fetchWith(c, 'mirrors-only')
    const bans = c.events.filter(e => e.event === 'ban')
    assert.equal(bans.length, 1, JSON.stringify(bans))
    assert.match(bans[0].source as string, new RegExp(String(corruptNginx.port)))
    assert.equal(done.result.banned.length, 1)
    assert.ok(share(done, `http:${nginx.url}`) > 0)
    await assertIntact(c)
  })

  it('a peer sending corrupted blocks is banned by Bitswap, the fetch names it, the package arrives intact', async () => {
    await seedDataDir(join(dir, 'liar'), join(dir, 'content'))
    const liar = await startNode('liar', ['--bootstrap', hub.multiaddrs[0], '--data-dir', join(dir, 'liar'), '--corrupt'], { script: FAULTY_PEER_SCRIPT })
    procs.push(liar)
    const c = await client('lied-to', [], true)
    // wait until the liar's announcement is in the DHT, so it is surely asked
    for (let i = 0; ; i++) {
      const r = await c.command('status', 'status')
      if (r.routingTable >= 3) break
      assert.ok(i < 150, 'routing table did not fill')
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    const done = await fetchWith(c, 'peers-only')
    await liar.stop()
    const bans = c.events.filter(e => e.event === 'ban')
    assert.deepEqual(bans.map(b => b.peer), [liar.peerId], 'one ban event, naming the peer')
    assert.equal(bans[0].source, 'dht')
    assert.equal(done.result.banned.length, 1)
    assert.ok(!(done.result.sources as Array<{ origin?: string }>).some(s => s.origin === liar.peerId), 'nothing stored came from the liar')
    await assertIntact(c)
  })

  it('no source can supply the package: ERR_FETCH_INCOMPLETE within the bound, naming what was tried', async () => {
    const c = await client('nothing', ['--mirror', 'http://127.0.0.1:9/'], true)
    const other = encodeCborBlock({ nobody: 'has this' }).cid.toString()
    const started = Date.now()
    const failed = await failedFetch(c, `fetch ${other}`, 90_000)
    assert.equal(failed.code, 'ERR_FETCH_INCOMPLETE')
    assert.equal(failed.details.missingCount, 1)
    assert.deepEqual(failed.details.missing, [other])
    assert.deepEqual(failed.details.tried, ['dht', 'http:http://127.0.0.1:9/'])
    assert.ok(Date.now() - started < 60_000, `failed after ${Date.now() - started} ms`)
    // with no source at all it fails at once
    const lonely = await client('lonely', [], false)
    const none = await failedFetch(lonely, `fetch ${other} mirrors-only`, 30_000)
    assert.equal(none.code, 'ERR_FETCH_INCOMPLETE')
    assert.ok((none.ms as number) < 5000)
  })

  it('SIGKILL of the fetching process, then a restart fetches only what is missing', async () => {
    // nginx behind a front that answers each request 20 ms late, asked 2 at a time: slow enough to kill mid-way
    const slow = await nginxFront(20)
    const first = await client('resume', ['--mirror', slow.url, '--mirror-concurrency', '2'], false)
    const half = first.next(e => e.event === 'block' && (e.n as number) >= totalBlocks / 2, 120_000, 'half the blocks')
    first.send(`fetch ${root} mirrors-only`)
    await half
    first.kill('SIGKILL')
    await first.exited
    const before = first.events.filter(e => e.event === 'block').length
    assert.ok(before < totalBlocks, 'killed before the end')

    const second = await client('resume', ['--mirror', nginx.url], false)
    const done = await fetchWith(second)
    assert.ok(done.result.blocks.local >= before, `${String(done.result.blocks.local)} local, ${before} stored before the kill`)
    assert.equal(done.result.blocks.total, totalBlocks)
    assert.equal(done.httpRequests[0], done.result.blocks.network, 'one request per missing block, none for stored ones')
    await assertIntact(second)
  })

  it('the only peer SIGKILLed mid-transfer: the mirror finishes the package', async () => {
    const c = await client('peer-killed', ['--mirror', nginx.url], true)
    let peerBlocks = 0
    const fromPeer = c.next(e => e.event === 'block' && e.source === 'dht' && ++peerBlocks >= totalBlocks * 0.25, 120_000, 'a quarter of the blocks from the peer')
    c.send(`fetch ${root}`)
    const at = await fromPeer
    seed.kill('SIGKILL')
    const killedAt = at.t as number
    await seed.exited
    const done = await c.waitFor(e => e.event === 'fetched' || e.event === 'error', 120_000, 'the fetch to end')
    assert.equal(done.event, 'fetched', `fetch failed: ${String(done.message)}`)
    assert.ok((at.n as number) < totalBlocks, 'the kill landed before the end')
    assert.ok(share(done, 'dht') > 0 && share(done, 'http:') > 0, JSON.stringify(done.result.sources))
    const firstMirror = c.events.find(e => e.event === 'block' && String(e.source).startsWith('http:') && (e.t as number) >= killedAt)
    if (firstMirror !== undefined) console.log(`# mirror carried the transfer ${(firstMirror.t as number) - killedAt} ms after the kill was decided`)
    await assertIntact(c)
  })

  it('the DHT still names the killed peer and there is no mirror: the typed error within the bound, no hang', async () => {
    assert.ok(!seed.running, 'runs after the peer was killed')
    const c = await client('dead-peer', [], true)
    const started = Date.now()
    const failed = await failedFetch(c, `fetch ${root} peers-only`, 120_000)
    const ms = Date.now() - started
    assert.equal(failed.code, 'ERR_FETCH_INCOMPLETE', String(failed.message))
    assert.deepEqual(failed.details.tried, ['dht'])
    assert.ok(ms < 60_000, `failed after ${ms} ms`)
    console.log(`# no reachable provider: ERR_FETCH_INCOMPLETE after ${ms} ms (${String(failed.details.cause)})`)
  })
})
