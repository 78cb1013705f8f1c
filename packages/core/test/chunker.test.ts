import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { BoundaryCutter, DEFAULT_CHUNKER, GEAR, MAX_BLOCK_SIZE, chunkLengths, chunkStream, isSwarmpackError, CoreErrorCode, validateChunkerParams } from '@swarmpack/core'

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
function bytes (n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; out[i] = x & 0xff }
  return out
}

async function collect (pieces: Iterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const c of chunkStream(pieces)) out.push(c)
  return out
}

function * split (data: Uint8Array, size: number): Generator<Uint8Array> {
  for (let o = 0; o < data.length; o += size) yield data.subarray(o, o + size)
}

const hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

test('the gear table is fixed: every node must cut identically', () => {
  assert.equal(GEAR.length, 256)
  assert.equal(new Set(GEAR).size, 256)
  // Pinned values: a change here would change every chunk boundary and break dedup with old releases.
  assert.equal(GEAR[0] >>> 0, 570003851)
  assert.equal(GEAR[255] >>> 0, 3709682966)
  assert.equal(createHash('sha256').update(new Uint8Array(GEAR.buffer)).digest('hex').slice(0, 16), '12d929dd65e7a799')
})

test('chunks reassemble the input, respect min/max and stay under the block limit', async () => {
  const data = bytes(5 * 1024 * 1024 + 123, 1)
  const chunks = await collect(split(data, 65536))
  const joined = Buffer.concat(chunks)
  assert.equal(hex(joined), hex(data))
  for (const [i, c] of chunks.entries()) {
    assert.ok(c.length <= DEFAULT_CHUNKER.maxSize && c.length <= MAX_BLOCK_SIZE)
    if (i < chunks.length - 1) assert.ok(c.length >= DEFAULT_CHUNKER.minSize)
  }
  const mean = data.length / chunks.length
  assert.ok(mean > DEFAULT_CHUNKER.avgSize * 0.6 && mean < DEFAULT_CHUNKER.avgSize * 2, `mean chunk ${mean}`)
})

test('boundaries do not depend on how the stream is split into pieces', async () => {
  const data = bytes(3 * 1024 * 1024, 2)
  const expected = chunkLengths(data)
  for (const piece of [1, 4093, 65536, 1024 * 1024, data.length]) {
    const pieces = piece === 1 ? split(data.subarray(0, 600_000), 1) : split(data, piece)
    const got = (await collect(pieces)).map(c => c.length)
    const want = piece === 1 ? chunkLengths(data.subarray(0, 600_000)) : expected
    assert.deepEqual(got, want, `piece size ${piece}`)
  }
})

test('an insertion early in a file changes only the chunks around it', async () => {
  const data = bytes(8 * 1024 * 1024, 3)
  const insert = bytes(100, 4)
  const at = 200_000
  const edited = Buffer.concat([data.subarray(0, at), insert, data.subarray(at)])
  const before = new Set((await collect(split(data, 65536))).map(hex))
  const after = await collect(split(edited, 65536))
  const fresh = after.filter(c => !before.has(hex(c)))
  assert.ok(fresh.length >= 1 && fresh.length <= 2, `${fresh.length} new chunks of ${after.length}`)
  const freshBytes = fresh.reduce((a, c) => a + c.length, 0)
  assert.ok(freshBytes < 3 * DEFAULT_CHUNKER.maxSize)
})

test('empty input yields no chunk; tiny input yields one', async () => {
  assert.deepEqual(await collect([]), [])
  assert.deepEqual(await collect([new Uint8Array(0)]), [])
  const small = await collect([bytes(10, 5)])
  assert.equal(small.length, 1)
  assert.equal(small[0].length, 10)
})

test('a long run of one byte value is cut at maxSize', async () => {
  const chunks = await collect(split(new Uint8Array(2 * 1024 * 1024), 1 << 20))
  assert.ok(chunks.every(c => c.length <= DEFAULT_CHUNKER.maxSize))
  assert.equal(chunks.reduce((a, c) => a + c.length, 0), 2 * 1024 * 1024)
})

test('invalid parameters are refused with a typed error', () => {
  for (const p of [
    { minSize: 16, avgSize: 64, maxSize: 256, normalization: 2 },
    { minSize: 4096, avgSize: 10000, maxSize: 65536, normalization: 2 },
    { minSize: 4096, avgSize: 16384, maxSize: 2 * MAX_BLOCK_SIZE, normalization: 2 }
  ]) {
    assert.throws(() => validateChunkerParams(p), (e: unknown) => isSwarmpackError(e, CoreErrorCode.INVALID_ARGUMENT))
  }
})

test('cut points (JavaScript and WebAssembly paths) equal a plain one-byte-per-step gear reference', async () => {
  // The reference states the algorithm directly: hash from min, harder mask before avg, easier after.
  const highMask = (bits: number): number => (((2 ** bits) - 1) * (2 ** (31 - bits))) | 0
  const reference = (buf: Uint8Array, min: number, avg: number, max: number, nc: number): number[] => {
    const b = Math.log2(avg); const maskS = highMask(b + nc); const maskL = highMask(b - nc)
    const out: number[] = []
    let pos = 0
    while (pos < buf.length) {
      let n = Math.min(buf.length - pos, max)
      if (buf.length - pos > min) {
        let h = 0
        for (let i = pos + min; i < pos + n; i++) {
          h = ((h << 1) + GEAR[buf[i]]) | 0
          if ((h & (i < pos + avg ? maskS : maskL)) === 0) { n = i - pos + 1; break }
        }
      }
      out.push(n)
      pos += n
    }
    return out
  }
  const data = bytes(4 * 1024 * 1024 + 1, 12)
  for (const [min, avg, max, nc] of [[8192, 16384, 65536, 1], [4096, 16384, 65536, 2], [101, 512, 2001, 3], [64, 128, 257, 0]]) {
    const params = { minSize: min, avgSize: avg, maxSize: max, normalization: nc }
    const want = reference(data, min, avg, max, nc)
    assert.deepEqual(chunkLengths(data, params), want, `${min}/${avg}/${max}/${nc}`)
    const streamed: number[] = []
    for await (const c of chunkStream(split(data, 100_003), params)) streamed.push(c.length)
    assert.deepEqual(streamed, want, `stream ${min}/${avg}/${max}/${nc}`)
  }
  assert.deepEqual(DEFAULT_CHUNKER, { minSize: 4096, avgSize: 16384, maxSize: 65536, normalization: 1 })
})

test('BoundaryCutter cuts a stream of pieces (bytes carried over passed again) exactly as chunkLengths', () => {
  let x = 12345
  const data = new Uint8Array(3 * 1024 * 1024 + 777)
  for (let i = 0; i < data.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; data[i] = x >>> 24 }
  data.fill(0, 200_000, 600_000) // a run of one byte: cuts forced at maxSize
  for (const params of [DEFAULT_CHUNKER, { minSize: 64, avgSize: 256, maxSize: 1024, normalization: 2 }]) {
    const expected = chunkLengths(data, params)
    for (const pieceSize of [1000, 65_536, 1024 * 1024]) {
      const cutter = new BoundaryCutter(params)
      const got: number[] = []
      let start = 0 // first byte not yet in a chunk
      for (let end = Math.min(pieceSize, data.length); ; end = Math.min(end + pieceSize, data.length)) {
        const final = end === data.length
        for (const n of cutter.lengths(data.subarray(start, end), final)) { got.push(n); start += n }
        assert.ok(final || end - start < params.maxSize, 'fewer than maxSize bytes are left over')
        if (final) break
      }
      assert.equal(start, data.length)
      assert.deepEqual(got, expected, `piece size ${pieceSize}`)
    }
  }
})
