import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isSwarmpackError, rawCid, verifyBlock } from '@swarmpack/core'
import { CID } from 'multiformats/cid'
import { HttpProvider } from '../src/index.js'
import { makeDag, writeMirrorDir, type TestDag } from './helpers/blocks.js'
import { startProxy } from './helpers/proxy.js'
import { startServer, startStaticServer, type TestServer } from './helpers/servers.js'

// no test here relies on this timeout firing: it is generous so that a healthy local request on a
// loaded machine is never cut (the failures tested are HTTP statuses, resets and sizes)
const quick = { timeoutMs: 20_000, retries: 1, retryDelayMs: 20 }

async function collect<T> (it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

function assertWholeDag (dag: TestDag, got: Array<{ cid: CID, bytes: Uint8Array }>): void {
  assert.equal(got.length, dag.blocks.length, 'every block once')
  assert.deepEqual(new Set(got.map(b => b.cid.toString())), new Set(dag.blocks.map(b => b.cid.toString())))
  for (const b of got) verifyBlock(b.cid, b.bytes)
}

describe('HttpProvider against static mirrors', () => {
  let dir: string
  let dag: TestDag
  const servers: TestServer[] = []
  const providers: HttpProvider[] = []
  const track = (p: HttpProvider): HttpProvider => { providers.push(p); return p }
  const serve = async (s: Promise<TestServer>): Promise<TestServer> => { const x = await s; servers.push(x); return x }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-http-'))
    dag = makeDag({ files: 3, chunksPerFile: 8, chunkSize: 64 * 1024 + 17 })
    await writeMirrorDir(dir, dag.blocks)
  })
  after(async () => {
    await Promise.all(providers.map(async p => await p.close()))
    await Promise.all(servers.map(async s => await s.close()))
    await rm(dir, { recursive: true, force: true })
  })

  it('fetches a whole package with getDag, every block verified, progress naming the mirror', async () => {
    const mirror = await serve(startStaticServer(dir))
    const p = track(new HttpProvider({ mirrors: [mirror.url], ...quick }))
    const events: string[] = []
    const got = await collect(p.getDag(dag.root, { onProgress: e => { if (e.type === 'swarmpack:provider:block') events.push((e.detail as { source: string }).source) } }))
    assertWholeDag(dag, got)
    assert.equal(events.length, dag.blocks.length)
    assert.ok(events.every(s => s === mirror.url))
    // One CAR attempt (answered with the root block by the static server), then raw blocks.
    assert.equal(p.stats().requests, dag.blocks.length)
    assert.equal(p.stats().mirrors[0].successes > 0, true)
    // The static server is now known not to speak CAR: a second walk asks only for raw blocks.
    mirror.requests.length = 0
    await collect(p.getDag(dag.root))
    assert.ok(mirror.requests.every(r => r.endsWith('?format=raw')), 'raw requests only')
  })

  it('getMany fetches concurrently and skips what no mirror has', async () => {
    const mirror = await serve(startStaticServer(dir))
    let inflight = 0
    let peak = 0
    const slow = await serve(startServer((req, res) => {
      inflight++; peak = Math.max(peak, inflight)
      setTimeout(() => {
        inflight--
        res.writeHead(307, { location: `${mirror.url}${(req.url ?? '').slice(1)}` }).end()
      }, 30)
    }))
    const p = track(new HttpProvider({ mirrors: [slow.url], concurrency: 8, ...quick }))
    const missing = rawCid(new Uint8Array([1, 2, 3]))
    const wanted = [...dag.blocks.map(b => b.cid), missing]
    const got = await collect(p.getMany(wanted))
    assert.equal(got.length, dag.blocks.length)
    assert.ok(peak > 1 && peak <= 8, `requests in flight: ${peak}`)
  })

  it('rejects a corrupted block, uses the next mirror and marks the bad one unhealthy', async () => {
    const victim = dag.blocks[5].cid.toString()
    const bad = await serve(startStaticServer(dir, {
      transform: (path, bytes) => path.endsWith(victim) ? Buffer.concat([bytes.subarray(0, 10), Buffer.from([bytes[10] ^ 0xff]), bytes.subarray(11)]) : undefined
    }))
    const good = await serve(startStaticServer(dir))
    const p = track(new HttpProvider({ mirrors: [bad.url, good.url], concurrency: 1, ...quick }))
    const got = await collect(p.getDag(dag.root))
    assertWholeDag(dag, got)
    assert.equal(got.find(b => b.cid.toString() === victim)?.source, good.url)
    const badHealth = p.stats().mirrors.find(m => m.url === bad.url)
    assert.equal(badHealth?.badData, 1)
    assert.equal(badHealth?.healthy, false)
    // Once marked, the good mirror goes first.
    good.requests.length = 0
    bad.requests.length = 0
    await p.get(dag.blocks[6].cid)
    assert.equal(good.requests.length, 1)
    assert.equal(bad.requests.length, 0)
  })

  it('raises ERR_NOT_FOUND after every mirror answered 404', async () => {
    const a = await serve(startStaticServer(dir))
    const b = await serve(startStaticServer(dir))
    const p = track(new HttpProvider({ mirrors: [a.url, b.url], ...quick }))
    const missing = rawCid(new Uint8Array([9, 9, 9]))
    await assert.rejects(p.get(missing), (err: unknown) => isSwarmpackError(err, 'ERR_NOT_FOUND'))
    assert.equal(a.requests.length, 1)
    assert.equal(b.requests.length, 1)
    assert.equal(await p.has(missing), false)
    assert.equal(await p.has(dag.blocks[1].cid), true)
    // 404 is an answer, not a failure: both mirrors stay healthy.
    assert.ok(p.stats().mirrors.every(m => m.healthy))
  })

  it('treats a truncated body as a failure and moves on', async () => {
    const good = await serve(startStaticServer(dir))
    const truncating = await serve(startServer((_req, res) => {
      res.writeHead(200, { 'content-length': 100_000 })
      res.write(Buffer.alloc(50_000, 1))
      setTimeout(() => res.socket?.destroy(), 10)
    }))
    const p = track(new HttpProvider({ mirrors: [truncating.url, good.url], ...quick }))
    const bytes = await p.get(dag.blocks[3].cid)
    verifyBlock(dag.blocks[3].cid, bytes)
    assert.equal(p.stats().mirrors.find(m => m.url === truncating.url)?.failures, 1)
    const alone = track(new HttpProvider({ mirrors: [truncating.url], ...quick, retries: 0 }))
    await assert.rejects(alone.get(dag.blocks[3].cid), (err: unknown) => isSwarmpackError(err, 'ERR_HTTP_ALL_MIRRORS_FAILED'))
  })

  it('cuts off an endless body at the block cap, with bounded memory', async () => {
    let sent = 0
    const chunk = Buffer.alloc(64 * 1024, 7)
    const endless = await serve(startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw' })
      const pump = (): void => {
        while (!res.destroyed && sent < 2 * 1024 * 1024 * 1024) {
          sent += chunk.byteLength
          if (!res.write(chunk)) { res.once('drain', pump); return }
        }
      }
      res.on('error', () => {})
      pump()
    }))
    const liar = await serve(startServer((_req, res) => { res.writeHead(200, { 'content-length': 50 * 1024 * 1024 }); res.write(Buffer.alloc(1024)) }))
    const p = track(new HttpProvider({ mirrors: [endless.url], ...quick, retries: 0 }))
    const before = process.memoryUsage().rss
    const err = await p.get(dag.blocks[2].cid).catch(e => e)
    assert.ok(isSwarmpackError(err, 'ERR_HTTP_ALL_MIRRORS_FAILED'))
    assert.equal((err.details.errors as Array<{ code: string }>)[0].code, 'ERR_HTTP_TOO_LARGE')
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.ok(sent < 32 * 1024 * 1024, `server managed to send ${sent} bytes`)
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'memory stays bounded')
    const q = track(new HttpProvider({ mirrors: [liar.url], ...quick, retries: 0 }))
    const err2 = await q.get(dag.blocks[2].cid).catch(e => e)
    assert.equal((err2.details.errors as Array<{ code: string }>)[0].code, 'ERR_HTTP_TOO_LARGE')
    assert.equal(q.stats().bytes, 0, 'an oversized Content-Length is refused before reading')
  })

  it('times out a slow mirror, uses the next one and then ranks the slow one last', async () => {
    const good = await serve(startStaticServer(dir))
    const hanging = await serve(startServer(() => { /* never answers */ }))
    // the timeout applies to the good mirror too: long enough for a healthy request under load
    const p = track(new HttpProvider({ mirrors: [hanging.url, good.url], timeoutMs: 3000, retries: 0 }))
    // the hanging server never answers, so getting the block at all shows the timeout decided
    // (no wall-clock bound: one would fail on a loaded machine)
    const bytes = await p.get(dag.blocks[4].cid)
    verifyBlock(dag.blocks[4].cid, bytes)
    const snap = p.stats().mirrors.find(m => m.url === hanging.url)
    assert.equal(snap?.healthy, false)
    hanging.requests.length = 0
    await p.get(dag.blocks[5].cid)
    assert.equal(hanging.requests.length, 0, 'the slow mirror is not tried first any more')
  })

  it('lets a failed mirror recover after its cool-down', async () => {
    let failing = true
    const good = await serve(startStaticServer(dir))
    const flaky = await serve(startServer((req, res) => {
      if (failing) { res.writeHead(503).end('busy'); return }
      res.writeHead(307, { location: `${good.url}${(req.url ?? '').slice(1)}` }).end()
    }))
    const p = track(new HttpProvider({ mirrors: [flaky.url, good.url], ...quick, health: { baseCooldownMs: 100 } }))
    await p.get(dag.blocks[1].cid)
    assert.equal(p.stats().mirrors[0].healthy, false)
    failing = false
    await new Promise(resolve => setTimeout(resolve, 150))
    flaky.requests.length = 0
    await p.get(dag.blocks[2].cid)
    assert.equal(flaky.requests.length, 1, 'preferred again after the cool-down')
    assert.equal(p.stats().mirrors[0].healthy, true)
  })

  it('finishes a package from another mirror when the first goes down mid-package', async () => {
    const first = await serve(startStaticServer(dir))
    const second = await serve(startStaticServer(dir))
    const p = track(new HttpProvider({ mirrors: [first.url, second.url], concurrency: 2, ...quick }))
    const got: Array<{ cid: CID, bytes: Uint8Array, source: string }> = []
    for await (const block of p.getDag(dag.root)) {
      got.push(block)
      if (got.length === 6) await first.close()
    }
    assertWholeDag(dag, got)
    const sources = new Set(got.map(b => b.source))
    assert.deepEqual(sources, new Set([first.url, second.url]))
  })

  it('goes through an explicit HTTP proxy, and through HTTP_PROXY unless NO_PROXY matches', async () => {
    const mirror = await serve(startStaticServer(dir))
    const proxy = await startProxy()
    try {
      const p = track(new HttpProvider({ mirrors: [mirror.url], proxy: { http: proxy.url }, ...quick }))
      assertWholeDag(dag, await collect(p.getDag(dag.root)))
      assert.ok(proxy.seen.length > 0, 'requests went through the proxy')
      assert.ok(proxy.seen.some(s => s.includes(`127.0.0.1:${mirror.port}`)))
      proxy.seen.length = 0
      const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY }
      try {
        process.env.HTTP_PROXY = proxy.url
        delete process.env.NO_PROXY
        const viaEnv = track(new HttpProvider({ mirrors: [mirror.url], ...quick }))
        await viaEnv.get(dag.blocks[3].cid)
        assert.equal(proxy.seen.length, 1)
        process.env.NO_PROXY = '127.0.0.1'
        const bypass = track(new HttpProvider({ mirrors: [mirror.url], ...quick }))
        await bypass.get(dag.blocks[4].cid)
        assert.equal(proxy.seen.length, 1, 'NO_PROXY bypasses the proxy')
        const off = track(new HttpProvider({ mirrors: [mirror.url], proxy: false, ...quick }))
        delete process.env.NO_PROXY
        await off.get(dag.blocks[5].cid)
        assert.equal(proxy.seen.length, 1, 'proxy: false ignores the environment')
      } finally {
        for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v }
      }
    } finally {
      await proxy.close()
    }
  })

  it('sends custom headers and URL credentials, never putting them in the mirror name', async () => {
    const mirror = await serve(startStaticServer(dir))
    const seen: Array<string | undefined> = []
    const guarded = await serve(startServer((req, res) => {
      seen.push(req.headers.authorization)
      if (req.headers.authorization !== 'Bearer s3cret' && req.headers.authorization !== `Basic ${Buffer.from('u:p w').toString('base64')}`) { res.writeHead(401).end(); return }
      res.writeHead(307, { location: `${mirror.url}${(req.url ?? '').slice(1)}` }).end()
    }))
    const p = track(new HttpProvider({ mirrors: [{ url: guarded.url, headers: { authorization: 'Bearer s3cret' } }], ...quick }))
    verifyBlock(dag.blocks[1].cid, await p.get(dag.blocks[1].cid))
    const withCreds = guarded.url.replace('http://', 'http://u:p%20w@')
    const q = track(new HttpProvider({ mirrors: [withCreds], ...quick }))
    verifyBlock(dag.blocks[2].cid, await q.get(dag.blocks[2].cid))
    assert.ok(!q.name.includes('p%20w'))
    const r = track(new HttpProvider({ mirrors: [guarded.url], ...quick, retries: 0 }))
    await assert.rejects(r.get(dag.blocks[2].cid), (err: unknown) => isSwarmpackError(err, 'ERR_HTTP_ALL_MIRRORS_FAILED'))
  })

  it('honours an AbortSignal and refuses bad input with typed errors', async () => {
    const hanging = await serve(startServer(() => {}))
    const p = track(new HttpProvider({ mirrors: [hanging.url], timeoutMs: 10_000 }))
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 50)
    await assert.rejects(p.get(dag.blocks[1].cid, { signal: controller.signal }), (err: unknown) => isSwarmpackError(err, 'ERR_ABORTED'))
    await assert.rejects(collect(p.getDag(dag.root, { signal: AbortSignal.abort() })), (err: unknown) => isSwarmpackError(err, 'ERR_ABORTED'))
    assert.throws(() => new HttpProvider({ mirrors: [] }), (err: unknown) => isSwarmpackError(err, 'ERR_HTTP_INVALID_CONFIG'))
    assert.throws(() => new HttpProvider({ mirrors: ['ftp://127.0.0.1/'] }), (err: unknown) => isSwarmpackError(err, 'ERR_HTTP_INVALID_CONFIG'))
    const v0 = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
    await assert.rejects(p.get(v0), (err: unknown) => isSwarmpackError(err, 'ERR_UNSUPPORTED_CID'))
    // The probe CID is answered without the network.
    assert.equal((await p.get(CID.parse('bafkqaaa'))).byteLength, 0)
  })
})
