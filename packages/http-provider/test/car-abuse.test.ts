/**
 * CAR responses that waste the client's time or bandwidth: gateways repeating blocks (defect 14)
 * and mirrors that trickle (defect 15). Every server is real, on 127.0.0.1.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { rawCid, verifyBlock } from '@swarmpack/core'
import { MemoryBlockstore } from 'blockstore-core/memory'
import type { ServerResponse } from 'node:http'
import { HttpProvider, carHeader, carSectionPrefix, startGatewayServer, type GatewayServer } from '../src/index.js'
import { makeDag, putAll, writeMirrorDir, type TestDag } from './helpers/blocks.js'
import { startServer, startStaticServer, type TestServer } from './helpers/servers.js'

async function collect<T> (it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

function assertWholeDag (dag: TestDag, got: Array<{ cid: { toString: () => string }, bytes: Uint8Array }>): void {
  assert.equal(got.length, dag.blocks.length, 'every block once')
  assert.deepEqual(new Set(got.map(b => b.cid.toString())), new Set(dag.blocks.map(b => b.cid.toString())))
}

/** Writes `next()` repeatedly with backpressure until it returns undefined or `limit` bytes went out. */
function pump (res: ServerResponse, next: () => Uint8Array | undefined, limit: number): void {
  let sent = 0
  res.on('error', () => {})
  const go = (): void => {
    while (!res.destroyed && sent < limit) {
      const chunk = next()
      if (chunk === undefined) break
      sent += chunk.byteLength
      if (!res.write(chunk)) { res.once('drain', go); return }
    }
    if (!res.destroyed) res.end()
  }
  go()
}

describe('CAR responses that bring nothing new', () => {
  let dag: TestDag
  const servers: TestServer[] = []
  const providers: HttpProvider[] = []
  const blockByPath = new Map<string, Uint8Array>()

  before(() => {
    dag = makeDag({ files: 2, chunksPerFile: 4, chunkSize: 32 * 1024 })
    for (const b of dag.blocks) blockByPath.set(`/ipfs/${b.cid.toString()}`, b.bytes)
  })
  after(async () => {
    await Promise.all(providers.map(async p => await p.close()))
    await Promise.all(servers.map(async s => await s.close()))
  })

  /**
   * A gateway whose raw blocks are right but whose CAR for the root sends the whole DAG and then
   * `extra` over and over (up to 64 MiB, so an unfixed client ends instead of hanging).
   */
  async function abusiveGateway (extra: (i: number) => { cid: any, bytes: Uint8Array }): Promise<TestServer> {
    const s = await startServer((req, res) => {
      const [path, query] = (req.url ?? '').split('?')
      if (query?.includes('format=car') === true) {
        res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1' })
        const parts: Uint8Array[] = [carHeader([dag.root])]
        for (const b of dag.blocks) parts.push(carSectionPrefix(b.cid, b.bytes.byteLength), b.bytes)
        let i = 0
        pump(res, () => {
          if (parts.length > 0) return parts.shift()
          const b = extra(i++)
          return Buffer.concat([carSectionPrefix(b.cid, b.bytes.byteLength), b.bytes])
        }, 64 * 1024 * 1024)
        return
      }
      const bytes = blockByPath.get(path)
      if (bytes === undefined) { res.writeHead(404).end(); return }
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw' }).end(bytes)
    })
    servers.push(s)
    return s
  }

  const cap = 2 * 1024 * 1024

  it('cuts off a gateway that keeps repeating an already-sent block, at maxUnwantedCarBytes', async () => {
    const gw = await abusiveGateway(i => dag.blocks[1 + (i % (dag.blocks.length - 1))])
    const p = new HttpProvider({ mirrors: [gw.url], timeoutMs: 5000, maxUnwantedCarBytes: cap })
    providers.push(p)
    const got = await collect(p.getDag(dag.root))
    assertWholeDag(dag, got)
    // Everything read beyond the DAG itself is waste: bounded by the cap plus one section.
    const waste = p.stats().bytes - dag.totalBytes
    assert.ok(waste <= cap + 64 * 1024, `read ${waste} bytes of repeated blocks (cap ${cap})`)
    assert.equal(p.stats().mirrors[0].badData, 1, 'the gateway is marked as sending bad data')
  })

  it('cuts off a gateway that keeps repeating one unrequested block', async () => {
    const stray = new Uint8Array(48 * 1024).fill(3)
    const strayBlock = { cid: rawCid(stray), bytes: stray }
    const gw = await abusiveGateway(() => strayBlock)
    const p = new HttpProvider({ mirrors: [gw.url], timeoutMs: 5000, maxUnwantedCarBytes: cap })
    providers.push(p)
    const got = await collect(p.getDag(dag.root))
    assertWholeDag(dag, got)
    const waste = p.stats().bytes - dag.totalBytes
    assert.ok(waste <= cap + 64 * 1024, `read ${waste} bytes of a repeated unrequested block (cap ${cap})`)
    assert.equal(p.stats().mirrors[0].badData, 1)
  })
})

describe('slow mirrors on the CAR path', () => {
  let dir: string
  let dag: TestDag
  let gw: GatewayServer
  const servers: TestServer[] = []
  const providers: HttpProvider[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-http-slow-'))
    dag = makeDag({ files: 6, chunksPerFile: 2, chunkSize: 4096 })
    await writeMirrorDir(dir, dag.blocks)
    const store = new MemoryBlockstore()
    await putAll(store, dag.blocks)
    gw = await startGatewayServer({ blockstore: store, host: '127.0.0.1', port: 0 })
  })
  after(async () => {
    await Promise.all(providers.map(async p => await p.close()))
    await Promise.all(servers.map(async s => await s.close()))
    await gw?.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** A server that answers 200 at once and then sends `body(url)` one byte every `everyMs`. */
  async function trickle (body: (url: string) => { type: string, bytes: Uint8Array }, everyMs: number): Promise<TestServer> {
    const timers = new Set<NodeJS.Timeout>()
    const s = await startServer((req, res) => {
      const { type, bytes } = body(req.url ?? '')
      res.writeHead(200, { 'content-type': type, 'content-length': bytes.byteLength })
      let i = 0
      const t = setInterval(() => {
        if (res.destroyed || i >= bytes.byteLength) { clearInterval(t); timers.delete(t); res.end(); return }
        res.write(bytes.subarray(i, ++i))
      }, everyMs)
      timers.add(t)
      res.on('close', () => { clearInterval(t); timers.delete(t) })
    })
    const close = s.close
    s.close = async () => { for (const t of timers) clearInterval(t); await close() }
    servers.push(s)
    return s
  }

  it('drops a static mirror that trickles the root block, marks it unhealthy and gets the CAR from the next mirror', { timeout: 60_000 }, async () => {
    const rootBytes = dag.blocks[0].bytes
    assert.ok(rootBytes.byteLength > 150, `root block has ${rootBytes.byteLength} bytes`)
    // 1 byte per 100 ms: the root block alone would take over 15 s.
    const slow = await trickle(() => ({ type: 'application/octet-stream', bytes: rootBytes }), 100)
    const p = new HttpProvider({ mirrors: [slow.url, gw.url], timeoutMs: 1500 })
    providers.push(p)
    const started = Date.now()
    const got = await collect(p.getDag(dag.root))
    const ms = Date.now() - started
    assertWholeDag(dag, got)
    for (const b of got) verifyBlock(b.cid, b.bytes)
    assert.ok(ms < 8000, `getDag took ${ms} ms`)
    const snap = p.stats().mirrors.find(m => m.url === slow.url)
    assert.equal(snap?.healthy, false, 'the trickling mirror is marked unhealthy')
    assert.equal(snap?.successes, 0)
    assert.equal(p.stats().carRequests, 2, 'the CAR was asked of the next mirror too')
    assert.ok(got.slice(1).every(b => b.source === gw.url), 'the rest came from the gateway')
  })

  it('drops a CAR gateway that sends 1 byte a second and gets the CAR from the next mirror', { timeout: 60_000 }, async () => {
    const parts = [carHeader([dag.root])]
    for (const b of dag.blocks) parts.push(carSectionPrefix(b.cid, b.bytes.byteLength), b.bytes)
    const car = new Uint8Array(Buffer.concat(parts))
    const slow = await trickle(() => ({ type: 'application/vnd.ipld.car; version=1', bytes: car }), 1000)
    // The idle timeout (1.5 s) never fires: a byte arrives every second.
    const p = new HttpProvider({ mirrors: [slow.url, gw.url], timeoutMs: 1500, health: { baseCooldownMs: 30_000 } })
    providers.push(p)
    const started = Date.now()
    const got = await collect(p.getDag(dag.root))
    const ms = Date.now() - started
    assertWholeDag(dag, got)
    assert.ok(ms < 10_000, `getDag took ${ms} ms`)
    const snap = p.stats().mirrors.find(m => m.url === slow.url)
    assert.equal(snap?.healthy, false, 'the slow gateway is marked unhealthy')
    assert.equal(p.stats().carRequests, 2)
    assert.ok(got.every(b => b.source === gw.url))
    // Known slow now: the next getDag asks the healthy gateway for the CAR first.
    slow.requests.length = 0
    await collect(p.getDag(dag.root))
    assert.equal(slow.requests.length, 0)
  })

  it('does not count against the minimum rate the time a slow consumer kept the stream paused', { timeout: 60_000 }, async () => {
    const big = makeDag({ files: 4, chunksPerFile: 12, chunkSize: 64 * 1024 })
    const store = new MemoryBlockstore()
    await putAll(store, big.blocks)
    const bigGw = await startGatewayServer({ blockstore: store, host: '127.0.0.1', port: 0 })
    try {
      // Windows of 300 ms; the consumer stops for 1.5 s after the first block. The rate asked is low
      // so a loaded machine passes it; without the exemption the paused windows see 0 bytes.
      const p = new HttpProvider({ mirrors: [bigGw.url], timeoutMs: 300, minBytesPerSecond: 32 * 1024 })
      providers.push(p)
      const got = []
      for await (const b of p.getDag(big.root)) {
        got.push(b)
        if (got.length === 1) await new Promise(resolve => setTimeout(resolve, 1500))
      }
      assertWholeDag(big, got)
      assert.equal(p.stats().carRequests, 1)
      assert.equal(p.stats().requests, 1, 'the whole DAG came in the one CAR')
      assert.equal(p.stats().mirrors[0].healthy, true)
    } finally {
      await bigGw.close()
    }
  })

  it('keeps a static mirror that is merely ordinary (no regression): root from the mirror, rest raw', async () => {
    const mirror = await startStaticServer(dir)
    servers.push(mirror)
    const p = new HttpProvider({ mirrors: [mirror.url], timeoutMs: 2000 })
    providers.push(p)
    assertWholeDag(dag, await collect(p.getDag(dag.root)))
    assert.equal(p.stats().mirrors[0].healthy, true)
  })
})
