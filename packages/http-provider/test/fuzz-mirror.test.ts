/**
 * Fuzzing what a mirror or gateway sends: CARv1 streams (readCar, in arbitrary chunkings) and
 * whole HTTP answers (status, content type, body) to raw-block and CAR requests, served by a real
 * HTTP server on loopback. Every input must end in the right bytes or a SwarmpackError with an
 * ERR_ code; parsing may use at most 1 s of CPU per input (the wall clock is bounded more loosely:
 * the machine is shared). SWARMPACK_FUZZ_RUNS sets the inputs per decoder (1,000 here).
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { encodeCborBlock, rawCid, type CID } from '@swarmpack/core'
import fc from 'fast-check'
import { expectTypedOutcome, mutatedBytes } from '@swarmpack/core/fuzzing'
import { equals } from 'uint8arrays/equals'
import { carHeader, carSectionPrefix } from '../src/car-writer.js'
import { readCar } from '../src/car-reader.js'
import { CAR_ACCEPT, HttpProvider, RAW_ACCEPT } from '../src/provider.js'

const RUNS = Number(process.env.SWARMPACK_FUZZ_RUNS ?? 1000)
/** HTTP round trips are slower than in-memory decoding: SWARMPACK_FUZZ_HTTP_RUNS overrides RUNS for them. */
const HTTP_RUNS = Number(process.env.SWARMPACK_FUZZ_HTTP_RUNS ?? RUNS)

/** The shared check, plus a loose wall-clock bound: an HTTP answer must never hang. */
async function typed (what: string, fn: () => Promise<unknown>): Promise<void> {
  const wall = Date.now()
  await expectTypedOutcome(what, fn)
  if (Date.now() - wall > 20_000) throw new Error(`${what}: hung for ${Date.now() - wall} ms`)
}

const mutated = (seed: Uint8Array): fc.Arbitrary<Uint8Array> => mutatedBytes(fc, seed)

const leafA = new Uint8Array([1, 2, 3, 4])
const leafB = new Uint8Array(300).fill(7)
const root = encodeCborBlock({ files: [rawCid(leafA), rawCid(leafB)] })
const blocks: Array<{ cid: CID, bytes: Uint8Array }> = [root, { cid: rawCid(leafA), bytes: leafA }, { cid: rawCid(leafB), bytes: leafB }]
const car = new Uint8Array(Buffer.concat([carHeader([root.cid]), ...blocks.flatMap(b => [carSectionPrefix(b.cid, b.bytes.byteLength), b.bytes])]))

async function * chunked (bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0
  for (const c of [...cuts].sort((a, b) => a - b)) {
    if (c > at && c < bytes.length) { yield bytes.subarray(at, c); at = c }
  }
  yield bytes.subarray(at)
}

describe('fuzz: CAR streams', () => {
  it('the seed CAR reads', async () => {
    const got = []
    for await (const s of readCar(chunked(car, [5, 50]), { sourceName: 'seed', maxBlockSize: 1 << 20 })) got.push(s.cid.toString())
    assert.deepEqual(got, blocks.map(b => b.cid.toString()))
  })

  it(`mutated CARs in random chunkings (${RUNS} inputs)`, async () => {
    await fc.assert(fc.asyncProperty(mutated(car), fc.array(fc.nat(car.length + 16), { maxLength: 6 }), async (b, cuts) => {
      await typed('car', async () => { for await (const s of readCar(chunked(b, cuts), { sourceName: 'fuzz', maxBlockSize: 1 << 20 })) void s })
    }), { numRuns: RUNS })
  })

  it(`random byte streams as CARs (${RUNS} inputs)`, async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 256 }), { maxLength: 4 }), async parts => {
      await typed('car', async () => { for await (const s of readCar((async function * () { yield * parts })(), { sourceName: 'fuzz', maxBlockSize: 1 << 20 })) void s })
    }), { numRuns: RUNS })
  })
})

describe('fuzz: HTTP mirror answers', () => {
  let server: Server
  let answer: { status: number, type: string, body: Uint8Array, length?: number } = { status: 404, type: 'text/plain', body: new Uint8Array() }
  let provider: HttpProvider
  before(async () => {
    server = createServer((req, res) => {
      const headers: Record<string, string | number> = { 'content-type': answer.type }
      if (answer.length !== undefined) headers['content-length'] = answer.length
      res.writeHead(answer.status, headers)
      // a server that lied about the length hangs up after the body, as a real one would
      const lied = answer.length !== undefined && answer.length !== answer.body.byteLength
      res.end(Buffer.from(answer.body))
      if (lied) { const socket = req.socket; setTimeout(() => socket.destroy(), 5) }
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    provider = new HttpProvider({ mirrors: [{ url: `http://127.0.0.1:${port}/` }], retries: 0, retryDelayMs: 1, timeoutMs: 2000 })
  })
  after(async () => {
    await provider.close()
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })

  const status = fc.constantFrom(200, 200, 200, 203, 206, 301, 400, 404, 410, 429, 500, 503)
  const type = fc.constantFrom(RAW_ACCEPT, CAR_ACCEPT, 'application/vnd.ipld.car', 'text/html', 'application/octet-stream', '')

  it(`raw-block and CAR answers (${HTTP_RUNS} inputs): right bytes or a typed error`, async () => {
    const body = fc.oneof(mutated(leafB), mutated(car), fc.uint8Array({ maxLength: 600 }), fc.constant(leafB), fc.constant(car))
    await fc.assert(fc.asyncProperty(status, type, body, fc.option(fc.nat(700), { nil: undefined }), fc.boolean(), async (s, t, b, length, dag) => {
      answer = { status: s, type: t, body: b, length }
      await typed('http', async () => {
        if (dag) {
          for await (const got of provider.getDag(root.cid)) {
            const want = blocks.find(x => x.cid.equals(got.cid))
            assert.ok(want !== undefined && equals(want.bytes, got.bytes), 'getDag yielded a block that is not the DAG\'s')
          }
        } else {
          const got = await provider.get(rawCid(leafB))
          assert.ok(equals(got, leafB), 'get returned other bytes than the block')
        }
      })
    }), { numRuns: HTTP_RUNS })
  })
})
