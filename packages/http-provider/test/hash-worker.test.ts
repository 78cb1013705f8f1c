/**
 * getDag of a package CAR from nginx with block hashing in core's SHA-256 worker: the same blocks
 * as hashing on the calling thread, a block corrupted in the middle of the CAR by a mirror that
 * lies is refused with the same typed error either way and never reaches the store, and the worker
 * is gone whenever the call ends (abort, the consumer leaving).
 */
import { randomBytes } from 'node:crypto'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FsBlockstore, isSwarmpackError, liveSha256Workers, mirrorBlockPath, pack, verifyBlock, type SwarmpackError } from '@swarmpack/core'
import { CID } from 'multiformats/cid'
import { HASH_WORKER_THRESHOLD, HttpProvider, exportHttpMirror, hashWorkerPays, mirrorCarPath, readCar } from '../src/index.js'
import { NGINX, startNginx, type TestNginx } from './helpers/nginx.js'

const quick = { timeoutMs: 20_000, retries: 1, retryDelayMs: 20, retryBudgetMs: 2_000 }

/** getDag into `store` as a fetcher does: every yielded block put, many puts in flight. */
async function fetchInto (p: HttpProvider, root: CID, store: FsBlockstore, signal?: AbortSignal, onBlock?: (n: number) => void): Promise<Map<string, number>> {
  const got = new Map<string, number>()
  const puts: Array<Promise<unknown>> = []
  try {
    for await (const b of p.getDag(root, { signal })) {
      got.set(b.cid.toString(), b.bytes.byteLength)
      puts.push(store.put(b.cid, b.bytes))
      if (puts.length >= 64) await puts.shift()
      onBlock?.(got.size)
    }
  } finally {
    await Promise.all(puts)
  }
  return got
}

describe('when the SHA-256 worker pays', () => {
  it('needs a large CAR and a free core', () => {
    assert.equal(hashWorkerPays(HASH_WORKER_THRESHOLD, 0.5, 2), true)
    assert.equal(hashWorkerPays(HASH_WORKER_THRESHOLD - 1, 0.5, 2), false)
    assert.equal(hashWorkerPays(HASH_WORKER_THRESHOLD, 1.5, 2), false)
    assert.equal(hashWorkerPays(10 * HASH_WORKER_THRESHOLD, 2.9, 4), true)
  })
})

describe('getDag with the SHA-256 worker (nginx)', { skip: NGINX === undefined ? 'nginx is not installed (apt-get install -y nginx-light)' : false }, () => {
  let tmp: string
  let root: CID
  let good: TestNginx
  let liar: TestNginx
  let cut: TestNginx
  let badCid: CID
  let carOrder: string[]
  const stores: FsBlockstore[] = []
  const open = async (name: string): Promise<FsBlockstore> => { const s = await FsBlockstore.open(join(tmp, name)); stores.push(s); return s }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'swarmpack-http-hashworker-'))
    await mkdir(join(tmp, 'src'))
    // ~12 MiB: a dozen worker batches, several in flight
    await writeFile(join(tmp, 'src', 'data.bin'), randomBytes(12 * 1024 * 1024))
    const store = await FsBlockstore.open(join(tmp, 'source'), { fsync: false })
    root = (await pack(join(tmp, 'src'), { name: 'hw', version: '1.0.0' }, { blockstore: store })).root
    await exportHttpMirror(store, [root], join(tmp, 'mirror'), { fsync: false, cars: true })
    await store.close()
    // The liar: the same mirror with one raw block in the middle of the CAR flipped, in the CAR and
    // as a raw file, so every answer about that block is wrong.
    await cp(join(tmp, 'mirror'), join(tmp, 'lying'), { recursive: true })
    const carFile = join(tmp, 'lying', ...mirrorCarPath(root).split('/'))
    const car = await readFile(carFile)
    const sections: Array<{ cid: CID, bytes: Uint8Array }> = []
    for await (const s of readCar((async function * () { yield new Uint8Array(car) })(), { sourceName: 'test', maxBlockSize: 2 * 1024 * 1024 })) sections.push(s)
    carOrder = sections.map(s => s.cid.toString())
    const victim = sections.filter(s => s.cid.code === 0x55)[Math.floor(sections.length / 2)]
    badCid = victim.cid
    car[victim.bytes.byteOffset + 100] ^= 0xff
    await writeFile(carFile, car)
    const rawFile = join(tmp, 'lying', mirrorBlockPath(badCid))
    const raw = await readFile(rawFile)
    raw[100] ^= 0xff
    await writeFile(rawFile, raw)
    // A mirror whose CAR stops in the middle of a section two thirds in (its raw blocks are fine).
    await cp(join(tmp, 'mirror'), join(tmp, 'cut'), { recursive: true })
    const cutFile = join(tmp, 'cut', ...mirrorCarPath(root).split('/'))
    const whole = await readFile(cutFile)
    await writeFile(cutFile, whole.subarray(0, Math.floor(whole.byteLength * 2 / 3)))
    good = await startNginx(join(tmp, 'mirror')) as TestNginx
    cut = await startNginx(join(tmp, 'cut')) as TestNginx
    liar = await startNginx(join(tmp, 'lying')) as TestNginx
  })
  after(async () => {
    await good?.close()
    await liar?.close()
    await cut?.close()
    for (const s of stores) await s.close()
    await rm(tmp, { recursive: true, force: true })
  })

  it('yields and stores the same verified blocks with and without the worker', async () => {
    const results: Array<Map<string, number>> = []
    for (const hashWorker of [true, false]) {
      const p = new HttpProvider({ mirrors: [good.url], hashWorker, ...quick })
      const store = await open(`same-${String(hashWorker)}`)
      try {
        results.push(await fetchInto(p, root, store))
        assert.equal(p.stats().carRequests, 1)
        assert.equal(p.stats().requests, 1, 'the whole package from one CAR')
        assert.equal(p.stats().hashWorkers, hashWorker ? 1 : 0)
      } finally {
        await p.close()
      }
      assert.equal(liveSha256Workers(), 0)
      for (const cid of carOrder) {
        const c = CID.parse(cid)
        verifyBlock(c, await store.getBytes(c))
      }
    }
    assert.equal(results[0].size, carOrder.length)
    assert.deepEqual(results[0], results[1])
  })

  it('refuses the corrupt block in the middle of the CAR with the same typed error, and never stores it', async () => {
    const errors: SwarmpackError[] = []
    const requests: number[] = []
    for (const hashWorker of [true, false]) {
      const p = new HttpProvider({ mirrors: [liar.url], hashWorker, ...quick })
      const store = await open(`liar-${String(hashWorker)}`)
      let got = new Map<string, number>()
      try {
        await assert.rejects(async () => { got = await fetchInto(p, root, store, undefined, () => {}) }, (err: unknown) => {
          errors.push(err as SwarmpackError)
          return isSwarmpackError(err)
        })
        assert.equal(p.stats().hashWorkers, hashWorker ? 1 : 0)
        assert.ok((p.stats().mirrors[0].badData ?? 0) >= 1, 'the liar is marked as sending bad data')
        requests.push(p.stats().requests)
      } finally {
        await p.close()
      }
      assert.equal(liveSha256Workers(), 0)
      assert.equal(await store.has(badCid), false, 'the corrupt block is not in the store')
      assert.equal(got.has(badCid.toString()), false)
    }
    const [w, t] = errors
    assert.equal(w.code, t.code)
    assert.deepEqual(w.details.missing, [badCid.toString()])
    assert.deepEqual(w.details.missing, t.details.missing)
    // each attempt at the block (the CAR stream, then the raw request) was refused as a mismatch
    const codes = (e: SwarmpackError): unknown[] => (e.details.errors as Array<{ code: string, details: { errors: Array<{ code: string }> } }>).flatMap(x => [x.code, ...x.details.errors.map(y => y.code)])
    assert.deepEqual(codes(w), codes(t))
    assert.deepEqual(codes(w), ['ERR_HTTP_ALL_MIRRORS_FAILED', 'ERR_BLOCK_MISMATCH'])
    // the CAR stopped at the bad block in both cases: the blocks after it came as raw requests
    const after = carOrder.length - carOrder.indexOf(badCid.toString()) - 1
    assert.ok(after > 0)
    assert.deepEqual(requests, [requests[1], requests[1]])
    assert.ok(requests[0] >= 1 + after, `${requests[0]} requests for ${after} blocks after the bad one`)
  })

  it('keeps every complete block of a truncated CAR, as on the calling thread, and fetches the rest raw', async () => {
    const requests: number[] = []
    for (const hashWorker of [true, false]) {
      const p = new HttpProvider({ mirrors: [cut.url], hashWorker, ...quick })
      const store = await open(`cut-${String(hashWorker)}`)
      try {
        const got = await fetchInto(p, root, store)
        assert.equal(got.size, carOrder.length)
        assert.equal(p.stats().hashWorkers, hashWorker ? 1 : 0)
        requests.push(p.stats().requests)
      } finally {
        await p.close()
      }
      assert.equal(liveSha256Workers(), 0)
    }
    // the same blocks came from the CAR either way: the same raw requests for the rest
    assert.equal(requests[0], requests[1])
    assert.ok(requests[0] > 1 && requests[0] < carOrder.length / 2, `${requests[0]} requests`)
  })

  it('terminates the worker when the call is aborted mid-CAR', async () => {
    const p = new HttpProvider({ mirrors: [good.url], hashWorker: true, ...quick })
    const store = await open('abort')
    const ac = new AbortController()
    try {
      await assert.rejects(fetchInto(p, root, store, ac.signal, n => { if (n === 50) ac.abort() }), (err: unknown) => isSwarmpackError(err, 'ERR_ABORTED'))
      assert.equal(p.stats().hashWorkers, 1)
      assert.equal(liveSha256Workers(), 0, 'no worker outlives the aborted call')
    } finally {
      await p.close()
    }
  })

  it('terminates the worker when the consumer stops reading mid-CAR', async () => {
    const p = new HttpProvider({ mirrors: [good.url], hashWorker: true, ...quick })
    try {
      let n = 0
      for await (const _ of p.getDag(root)) if (++n === 50) break
      assert.equal(p.stats().hashWorkers, 1)
      assert.equal(liveSha256Workers(), 0)
    } finally {
      await p.close()
    }
  })
})
