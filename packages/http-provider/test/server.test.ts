import { request as httpRequest } from 'node:http'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CarBufferReader } from '@ipld/car/buffer-reader'
import { CarWriter } from '@ipld/car/writer'
import { isSwarmpackError, rawCid, verifyBlock } from '@swarmpack/core'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CID } from 'multiformats/cid'
import { HttpProvider, startGatewayServer, type GatewayServer } from '../src/index.js'
import { makeDag, putAll, type TestDag } from './helpers/blocks.js'
import { startServer, type TestServer } from './helpers/servers.js'

interface Reply { status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }

/** A raw HTTP exchange with node:http, so paths reach the server exactly as written. */
async function get (base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  const url = new URL(base)
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method, headers, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

async function collect<T> (it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

describe('gateway server', () => {
  let dag: TestDag
  let store: MemoryBlockstore
  let gw: GatewayServer
  const extra: TestServer[] = []

  before(async () => {
    dag = makeDag({ files: 2, chunksPerFile: 5, chunkSize: 100_000 })
    store = new MemoryBlockstore()
    await putAll(store, dag.blocks)
    gw = await startGatewayServer({ blockstore: store, host: '127.0.0.1', port: 0 })
  })
  after(async () => {
    await gw.close()
    await Promise.all(extra.map(async s => await s.close()))
  })

  it('answers raw blocks by ?format=raw and by Accept, and HEAD without a body', async () => {
    const b = dag.blocks[3]
    const byQuery = await get(gw.url, `/ipfs/${b.cid.toString()}?format=raw`)
    assert.equal(byQuery.status, 200)
    assert.equal(byQuery.headers['content-type'], 'application/vnd.ipld.raw')
    assert.deepEqual(new Uint8Array(byQuery.body), b.bytes)
    const byAccept = await get(gw.url, `/ipfs/${b.cid.toString()}`, { accept: 'application/vnd.ipld.raw' })
    assert.deepEqual(new Uint8Array(byAccept.body), b.bytes)
    const head = await get(gw.url, `/ipfs/${b.cid.toString()}?format=raw`, {}, 'HEAD')
    assert.equal(head.status, 200)
    assert.equal(head.headers['content-length'], String(b.bytes.byteLength))
    assert.equal(head.body.byteLength, 0)
  })

  it('answers the bafkqaaa probe with 200 and an empty body', async () => {
    const r = await get(gw.url, '/ipfs/bafkqaaa?format=raw')
    assert.equal(r.status, 200)
    assert.equal(r.body.byteLength, 0)
  })

  it('streams a CAR of the whole DAG depth-first, each block once, readable by @ipld/car', async () => {
    const r = await get(gw.url, `/ipfs/${dag.root.toString()}?format=car&dag-scope=all`)
    assert.equal(r.status, 200)
    assert.match(String(r.headers['content-type']), /^application\/vnd\.ipld\.car; version=1/)
    const reader = CarBufferReader.fromBytes(new Uint8Array(r.body))
    assert.deepEqual(reader.getRoots().map(String), [dag.root.toString()])
    const blocks = reader.blocks()
    assert.equal(blocks.length, dag.blocks.length)
    for (const blk of blocks) verifyBlock(blk.cid, blk.bytes)
    // Depth-first: root, first file node, its chunks, second file node, its chunks.
    const order = blocks.map(b => b.cid.toString())
    const file0 = dag.blocks[1].cid.toString()
    const file1 = dag.blocks[2].cid.toString()
    assert.equal(order[0], dag.root.toString())
    assert.equal(order[1], file0)
    assert.equal(order[7], file1)
    const block = await get(gw.url, `/ipfs/${dag.root.toString()}?format=car&dag-scope=block`)
    assert.equal(CarBufferReader.fromBytes(new Uint8Array(block.body)).blocks().length, 1)
    const byAccept = await get(gw.url, `/ipfs/${dag.root.toString()}`, { accept: 'application/vnd.ipld.car; version=1' })
    assert.equal(CarBufferReader.fromBytes(new Uint8Array(byAccept.body)).blocks().length, dag.blocks.length)
  })

  it('answers errors with the right status and a small body', async () => {
    const missing = rawCid(new Uint8Array([4, 5, 6])).toString()
    const cases: Array<[string, number, Record<string, string>?, string?]> = [
      [`/ipfs/${missing}?format=raw`, 404],
      [`/ipfs/${missing}?format=car`, 404],
      ['/ipfs/not-a-cid?format=raw', 400],
      ['/ipfs/bafynotacid?format=raw', 400],
      [`/ipfs/${dag.root.toString()}?format=tar`, 400],
      [`/ipfs/${dag.root.toString()}?format=car&dag-scope=entity`, 400],
      [`/ipfs/${dag.root.toString()}?format=car&entity-bytes=0:10`, 400],
      [`/ipfs/${dag.root.toString()}`, 406, { accept: 'text/html' }],
      [`/ipfs/${dag.root.toString()}?format=raw`, 405, {}, 'POST'],
      // No listings, no paths inside DAGs, no escaping the /ipfs/ namespace.
      ['/', 404],
      ['/ipfs/', 400],
      ['/ipfs', 404],
      [`/ipfs/${dag.root.toString()}/file-0.bin`, 400],
      ['/ipfs/../../etc/passwd', 400],
      ['/ipfs/%2e%2e/etc/passwd', 400],
      [`/ipfs/${dag.root.toString()}%2f..`, 400],
      ['/etc/passwd', 404],
      ['//ipfs/bafkqaaa', 404]
    ]
    for (const [path, status, headers, method] of cases) {
      const r = await get(gw.url, path, headers ?? {}, method)
      assert.equal(r.status, status, `${method ?? 'GET'} ${path}`)
      assert.ok(r.body.byteLength < 512, 'small error body')
    }
  })

  it('streams CARs with backpressure: a reader that stops reading stops the store reads', async () => {
    const big = makeDag({ files: 1, chunksPerFile: 64, chunkSize: 1024 * 1024 })
    let reads = 0
    const counting = new MemoryBlockstore()
    await putAll(counting, big.blocks)
    const origGet = counting.get.bind(counting)
    counting.get = ((cid: CID, opts?: object) => { reads++; return origGet(cid, opts) }) as typeof counting.get
    const server = await startGatewayServer({ blockstore: counting })
    try {
      const url = new URL(server.url)
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: url.hostname, port: url.port, path: `/ipfs/${big.root.toString()}?format=car`, agent: false }, res => {
          res.pause()
          setTimeout(() => {
            try {
              assert.ok(reads < 24, `the server read ${reads} of ${big.blocks.length} blocks ahead of a paused client`)
              resolve()
            } catch (err) { reject(err) } finally { res.destroy() }
          }, 400)
        })
        req.on('error', () => {})
        req.end()
      })
    } finally {
      await server.close()
    }
  })

  it('serves HttpProvider.getDag in one CAR request', async () => {
    const p = new HttpProvider({ mirrors: [gw.url] })
    try {
      const got = await collect(p.getDag(dag.root))
      assert.equal(got.length, dag.blocks.length)
      assert.equal(p.stats().requests, 1)
      assert.equal(p.stats().carRequests, 1)
    } finally {
      await p.close()
    }
  })

  /** A gateway we control: it answers CAR requests with whatever `blocks` the test gives it. */
  async function fakeGateway (blocks: Array<{ cid: CID, bytes: Uint8Array }>): Promise<TestServer> {
    const s = await startServer((req, res) => {
      if ((req.url ?? '').includes('format=car')) {
        res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1' })
        const { writer, out } = CarWriter.create([dag.root])
        ;(async () => { for await (const c of out) res.write(c); res.end() })().catch(() => res.destroy())
        ;(async () => { for (const b of blocks) await writer.put(b); await writer.close() })().catch(() => res.destroy())
        return
      }
      res.writeHead(404).end()
    })
    extra.push(s)
    return s
  }

  it('drops unrequested CAR blocks and fetches what the CAR left out from the next mirror', async () => {
    const stranger = { cid: rawCid(new Uint8Array([7, 7, 7])), bytes: new Uint8Array([7, 7, 7]) }
    const partial = [dag.blocks[0], stranger, ...dag.blocks.slice(1, 6)]
    const gwA = await fakeGateway(partial)
    const p = new HttpProvider({ mirrors: [gwA.url, gw.url], retries: 0 })
    try {
      const got = await collect(p.getDag(dag.root))
      assert.equal(got.length, dag.blocks.length)
      assert.ok(!got.some(b => b.cid.equals(stranger.cid)), 'the unrequested block is not passed on')
      assert.equal(got.filter(b => b.source === gwA.url).length, 6)
      assert.equal(got.filter(b => b.source === gw.url).length, dag.blocks.length - 6)
    } finally {
      await p.close()
    }
  })

  it('rejects a CAR with a corrupted block, marks the gateway and completes from another mirror', async () => {
    const bad = dag.blocks.slice(0, 4).map(b => ({ ...b }))
    bad[3] = { cid: bad[3].cid, bytes: bad[3].bytes.slice() }
    bad[3].bytes[0] ^= 0xff
    const gwA = await fakeGateway([...bad, ...dag.blocks.slice(4)])
    const p = new HttpProvider({ mirrors: [gwA.url, gw.url], retries: 0 })
    try {
      const got = await collect(p.getDag(dag.root))
      assert.equal(got.length, dag.blocks.length)
      for (const b of got) verifyBlock(b.cid, b.bytes)
      const snap = p.stats().mirrors.find(m => m.url === gwA.url)
      assert.equal(snap?.badData, 1)
      assert.equal(snap?.healthy, false)
    } finally {
      await p.close()
    }
  })

  it('raises an error when the DAG cannot be completed anywhere', async () => {
    const gwA = await fakeGateway(dag.blocks.slice(0, 3))
    const p = new HttpProvider({ mirrors: [gwA.url], retries: 0 })
    try {
      await assert.rejects(collect(p.getDag(dag.root)), (err: unknown) => isSwarmpackError(err, 'ERR_NOT_FOUND'))
    } finally {
      await p.close()
    }
  })
})
