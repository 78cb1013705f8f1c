/**
 * Mirrors that are briefly down, lack a package, or encode their answers; abort and time bounds.
 * Defects 16–19 of issue #10, each against real servers on 127.0.0.1.
 */
import { getEventListeners } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isSwarmpackError, rawCid, verifyBlock } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'
import { HttpProvider, carHeader, carSectionPrefix } from '../src/index.js'
import { makeDag, writeMirrorDir, type TestDag } from './helpers/blocks.js'
import { startServer, startStaticServer, type TestServer } from './helpers/servers.js'

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

/** Polls `cond` every 10 ms for at most `ms`. */
async function waitFor (cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('mirror faults', () => {
  let dir: string
  let dag: TestDag
  let mirror: TestServer
  const servers: TestServer[] = []
  const providers: HttpProvider[] = []
  const track = (p: HttpProvider): HttpProvider => { providers.push(p); return p }
  const serve = async (s: Promise<TestServer>): Promise<TestServer> => { const x = await s; servers.push(x); return x }
  /** Redirects to the good static mirror (a front that can misbehave before it). */
  const redirect = (req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(307, { location: `${mirror.url}${(req.url ?? '').slice(1)}` }).end()
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-http-faults-'))
    dag = makeDag({ files: 4, chunksPerFile: 6, chunkSize: 16 * 1024 + 5 })
    await writeMirrorDir(dir, dag.blocks)
    mirror = await serve(startStaticServer(dir))
  })
  after(async () => {
    await Promise.all(providers.map(async p => await p.close()))
    await Promise.all(servers.map(async s => await s.close()))
    await rm(dir, { recursive: true, force: true })
  })

  describe('16: short outages', () => {
    it('rides out a 1.5 s outage answered with 503 and Retry-After: 1, asking nothing during the wait', { timeout: 60_000 }, async () => {
      let firstAt: number | undefined
      const refusedAt: number[] = []
      const flaky = await serve(startServer((req, res) => {
        const now = Date.now()
        firstAt ??= now
        if (now - firstAt < 1500) { refusedAt.push(now - firstAt); res.writeHead(503, { 'retry-after': '1' }).end('busy'); return }
        redirect(req, res)
      }))
      const p = track(new HttpProvider({ mirrors: [flaky.url], timeoutMs: 5000 }))
      assertWholeDag(dag, await collect(p.getDag(dag.root)))
      // Requests already in flight when the outage began may land early; none is sent during the wait.
      const early = refusedAt.filter(t => t > 200 && t < 950)
      assert.deepEqual(early, [], `503s at ${refusedAt.join(', ')} ms`)
      assert.ok(refusedAt.length <= 4, `${refusedAt.length} requests refused during the outage`)
    })

    it('backs off exponentially between attempts at a failing mirror that gives no Retry-After', { timeout: 30_000 }, async () => {
      const at: number[] = []
      const flaky = await serve(startServer((req, res) => {
        at.push(Date.now())
        if (at.length <= 3) { res.writeHead(502).end(); return }
        redirect(req, res)
      }))
      const p = track(new HttpProvider({ mirrors: [flaky.url], timeoutMs: 5000, health: { baseCooldownMs: 100 } }))
      verifyBlock(dag.blocks[3].cid, await p.get(dag.blocks[3].cid))
      const gaps = at.slice(1).map((t, i) => t - at[i])
      assert.equal(at.length, 4)
      assert.ok(gaps[0] >= 90 && gaps[1] >= 180 && gaps[2] >= 360, `gaps ${gaps.join(', ')} ms`)
    })

    it('spends one retry budget per mirror, shared by every block, and then fails in bounded time', { timeout: 30_000 }, async () => {
      const down = await serve(startServer((_req, res) => { res.writeHead(503, { 'retry-after': '1' }).end() }))
      const p = track(new HttpProvider({ mirrors: [down.url], timeoutMs: 5000, retryBudgetMs: 2500 }))
      const cids = dag.blocks.slice(1, 11).map(b => b.cid)
      const started = Date.now()
      const got = await collect(p.getMany(cids))
      const ms = Date.now() - started
      assert.equal(got.length, 0)
      assert.ok(ms >= 900, `waited for Retry-After (${ms} ms)`)
      assert.ok(ms < 6000, `gave up within the budget (${ms} ms)`)
      // One request per block at the start, then one probe per Retry-After, not one per block.
      assert.ok(down.requests.length <= cids.length + 3, `${down.requests.length} requests`)
      const err = await p.get(cids[0]).catch(e => e)
      assert.ok(isSwarmpackError(err, 'ERR_HTTP_ALL_MIRRORS_FAILED'), String(err))
    })

    it('caps a huge Retry-After and uses the other mirror meanwhile', async () => {
      const sleepy = await serve(startServer((_req, res) => { res.writeHead(429, { 'retry-after': '86400' }).end() }))
      const p = track(new HttpProvider({ mirrors: [sleepy.url, mirror.url], timeoutMs: 5000, maxRetryAfterMs: 5000 }))
      const before = Date.now()
      verifyBlock(dag.blocks[2].cid, await p.get(dag.blocks[2].cid))
      const snap = p.stats().mirrors.find(m => m.url === sleepy.url)
      assert.equal(snap?.healthy, false)
      assert.ok((snap?.downUntil ?? 0) <= before + 5000 + 1000, 'Retry-After capped at maxRetryAfterMs')
      sleepy.requests.length = 0
      await p.get(dag.blocks[4].cid)
      assert.equal(sleepy.requests.length, 0, 'not asked before its Retry-After')
    })
  })

  describe('17: a mirror that lacks the package', () => {
    it('is asked once per package, not for every block', async () => {
      const emptyDir = await mkdtemp(join(tmpdir(), 'swarmpack-http-empty-'))
      try {
        await writeMirrorDir(emptyDir, [])
        const empty = await serve(startStaticServer(emptyDir))
        const p = track(new HttpProvider({ mirrors: [empty.url, mirror.url], timeoutMs: 5000 }))
        assertWholeDag(dag, await collect(p.getDag(dag.root)))
        assert.ok(empty.requests.length <= 2, `${empty.requests.length} requests to the mirror without the package`)
        assert.equal(p.stats().mirrors.find(m => m.url === empty.url)?.healthy, true, 'a 404 is not a failure')
        // Remembered for the next walk of the same package.
        empty.requests.length = 0
        assertWholeDag(dag, await collect(p.getDag(dag.root)))
        assert.equal(empty.requests.length, 0)
        // getMany with the root as a hint uses the same memory.
        assert.equal((await collect(p.getMany(dag.blocks.slice(1, 5).map(b => b.cid), { root: dag.root }))).length, 4)
        assert.equal(empty.requests.length, 0)
      } finally {
        await rm(emptyDir, { recursive: true, force: true })
      }
    })

    it('reports blocks nobody has as misses: getMany skips them, get and getDag say ERR_NOT_FOUND after yielding the rest', async () => {
      const victim = dag.blocks[7].cid
      const holey = await serve(startServer((req, res) => {
        if ((req.url ?? '').includes(victim.toString())) { res.writeHead(404).end(); return }
        redirect(req, res)
      }))
      const p = track(new HttpProvider({ mirrors: [holey.url], timeoutMs: 5000 }))
      await assert.rejects(p.get(victim), (err: unknown) => isSwarmpackError(err, 'ERR_NOT_FOUND'))
      const many = await collect(p.getMany(dag.blocks.map(b => b.cid)))
      assert.equal(many.length, dag.blocks.length - 1)
      const got: CID[] = []
      const err = await (async () => { for await (const b of p.getDag(dag.root)) got.push(b.cid) })().catch(e => e)
      assert.ok(isSwarmpackError(err, 'ERR_NOT_FOUND'), String(err))
      assert.deepEqual(err.details.missing, [victim.toString()])
      assert.equal(got.length, dag.blocks.length - 1, 'every other block was yielded')
      assert.equal(p.stats().mirrors[0].healthy, true)
    })
  })

  describe('misses and failures, for callers that combine sources', () => {
    it('does not call a block missing while a mirror that may have it rests', async () => {
      const notHere = await serve(startServer((_req, res) => { res.writeHead(404).end() }))
      const down = await serve(startServer((_req, res) => { res.writeHead(503, { 'retry-after': '3600' }).end() }))
      const p = track(new HttpProvider({ mirrors: [down.url, notHere.url], timeoutMs: 5000, retryBudgetMs: 500, maxRetryAfterMs: 60_000 }))
      const cid = dag.blocks[1].cid
      await assert.rejects(p.get(cid), (err: unknown) => isSwarmpackError(err, 'ERR_HTTP_ALL_MIRRORS_FAILED'))
      // Now `down` rests for a minute and is not asked: still not a miss.
      const started = Date.now()
      const err = await p.get(dag.blocks[2].cid).catch(e => e)
      assert.ok(Date.now() - started < 2000, 'no wait past the budget')
      assert.ok(isSwarmpackError(err, 'ERR_HTTP_ALL_MIRRORS_FAILED'), String(err))
      const codes = (err.details.errors as Array<{ code: string }>).map(e => e.code).sort()
      assert.deepEqual(codes, ['ERR_HTTP_MIRROR_RESTING', 'ERR_NOT_FOUND'])
      assert.equal(down.requests.length, 1)
    })
  })

  describe('18: abort', () => {
    it('adds one abort listener per call, however many requests are in flight', async () => {
      const delayed = await serve(startServer((req, res) => { setTimeout(() => { redirect(req, res) }, 30) }))
      const warnings: Error[] = []
      const onWarning = (w: Error): void => { warnings.push(w) }
      process.on('warning', onWarning)
      try {
        const p = track(new HttpProvider({ mirrors: [{ url: delayed.url, car: false }], timeoutMs: 5000, concurrency: 16 }))
        const controller = new AbortController()
        let peak = 0
        const sample = setInterval(() => { peak = Math.max(peak, getEventListeners(controller.signal, 'abort').length) }, 2)
        try {
          assertWholeDag(dag, await collect(p.getDag(dag.root, { signal: controller.signal })))
          assert.equal((await collect(p.getMany(dag.blocks.map(b => b.cid), { signal: controller.signal }))).length, dag.blocks.length)
        } finally {
          clearInterval(sample)
        }
        assert.ok(peak <= 1, `${peak} abort listeners at once`)
        assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'removed when the call ends')
        await new Promise(resolve => setImmediate(resolve))
        assert.deepEqual(warnings.filter(w => w.name === 'MaxListenersExceededWarning').map(w => w.message), [])
      } finally {
        process.off('warning', onWarning)
      }
    })

    it('cancels the requests in flight when aborted', async () => {
      let open = 0
      const hanging = await serve(startServer((req) => { open++; req.socket.on('close', () => { open-- }) }))
      const p = track(new HttpProvider({ mirrors: [hanging.url], timeoutMs: 60_000 }))
      const controller = new AbortController()
      const cids = dag.blocks.slice(1, 7).map(b => b.cid)
      const done = collect(p.getMany(cids, { signal: controller.signal }))
      await waitFor(() => open === cids.length, 5000, 'the requests to arrive')
      controller.abort()
      await assert.rejects(done, (err: unknown) => isSwarmpackError(err, 'ERR_ABORTED'))
      await waitFor(() => open === 0, 5000, 'the server to see the connections closed')
    })

    it('bounds every call in time without an AbortSignal', { timeout: 30_000 }, async () => {
      const hanging = await serve(startServer(() => {}))
      const p = track(new HttpProvider({ mirrors: [hanging.url], timeoutMs: 300, retryBudgetMs: 1000, health: { baseCooldownMs: 200 } }))
      const started = Date.now()
      await assert.rejects(collect(p.getDag(dag.root)), (err: unknown) => isSwarmpackError(err, 'ERR_HTTP_ALL_MIRRORS_FAILED') || isSwarmpackError(err, 'ERR_HTTP_TIMEOUT'))
      assert.equal(await p.has(dag.blocks[1].cid), false)
      assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`)
    })
  })

  describe('19: Content-Encoding', () => {
    it('asks for identity and decodes a gzip answer instead of calling it bad data', async () => {
      const acceptEncodings: Array<string | undefined> = []
      const gzipping = await serve(startServer((req, res) => {
        acceptEncodings.push(req.headers['accept-encoding'])
        const [path, query] = (req.url ?? '').split('?')
        const cid = path.slice('/ipfs/'.length)
        if (query?.includes('format=car') === true && cid === dag.root.toString()) {
          const parts = [carHeader([dag.root])]
          for (const b of dag.blocks) parts.push(carSectionPrefix(b.cid, b.bytes.byteLength), b.bytes)
          res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1', 'content-encoding': 'gzip' })
          res.end(gzipSync(Buffer.concat(parts)))
          return
        }
        const block = dag.blocks.find(b => b.cid.toString() === cid)
        if (block === undefined) { res.writeHead(404).end(); return }
        const body = gzipSync(block.bytes)
        res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw', 'content-encoding': 'gzip', 'content-length': body.byteLength })
        res.end(body)
      }))
      const p = track(new HttpProvider({ mirrors: [gzipping.url], timeoutMs: 5000 }))
      verifyBlock(dag.blocks[5].cid, await p.get(dag.blocks[5].cid))
      assertWholeDag(dag, await collect(p.getDag(dag.root)))
      const snap = p.stats().mirrors[0]
      assert.equal(snap.badData, 0)
      assert.equal(snap.healthy, true)
      assert.ok(acceptEncodings.every(a => a === 'identity'), `Accept-Encoding: ${acceptEncodings.join(', ')}`)
    })

    it('caps the decoded size of a compressed answer (a gzip bomb is ERR_HTTP_TOO_LARGE)', async () => {
      const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024))
      const bomber = await serve(startServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw', 'content-encoding': 'gzip', 'content-length': bomb.byteLength })
        res.end(bomb)
      }))
      const p = track(new HttpProvider({ mirrors: [bomber.url], timeoutMs: 5000, retries: 0 }))
      const err = await p.get(rawCid(new Uint8Array([4, 2]))).catch(e => e)
      assert.ok(isSwarmpackError(err, 'ERR_HTTP_ALL_MIRRORS_FAILED'), String(err))
      assert.equal((err.details.errors as Array<{ code: string }>)[0].code, 'ERR_HTTP_TOO_LARGE')
    })
  })
})
