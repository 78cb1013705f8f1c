import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CarWriter } from '@ipld/car/writer'
import { CarBufferReader } from '@ipld/car/buffer-reader'
import { isSwarmpackError, rawCid } from '@swarmpack/core'
import { varint } from 'multiformats'
import { carHeader, carSectionPrefix, readCar } from '../src/index.js'
import { makeDag } from './helpers/blocks.js'

async function carBytes (roots: Parameters<typeof CarWriter.create>[0], blocks: Array<{ cid: any, bytes: Uint8Array }>): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create(roots)
  const chunks: Uint8Array[] = []
  const reading = (async () => { for await (const c of out) chunks.push(c) })()
  for (const b of blocks) await writer.put(b)
  await writer.close()
  await reading
  return new Uint8Array(Buffer.concat(chunks))
}

/** Feeds bytes in small odd-sized pieces, as a network would. */
async function * pieces (bytes: Uint8Array, size = 1000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += size) yield bytes.subarray(i, i + size)
}

async function readAll (bytes: Uint8Array, maxBlockSize = 1024 * 1024, size = 997): Promise<Array<{ cid: string, bytes: Uint8Array }>> {
  const out = []
  for await (const s of readCar(pieces(bytes, size), { sourceName: 'test', maxBlockSize })) out.push({ cid: s.cid.toString(), bytes: s.bytes })
  return out
}

describe('CAR reader and writer', () => {
  const dag = makeDag({ files: 2, chunksPerFile: 3, chunkSize: 5000 })

  it('reads what @ipld/car writes, across chunk boundaries', async () => {
    const bytes = await carBytes([dag.root], dag.blocks)
    const got = await readAll(bytes)
    assert.deepEqual(got.map(g => g.cid), dag.blocks.map(b => b.cid.toString()))
    for (const [i, g] of got.entries()) assert.ok(Buffer.from(g.bytes).equals(Buffer.from(dag.blocks[i].bytes)))
  })

  it('yields the same sections whatever the chunk sizes (split varints, CIDs and blocks)', async () => {
    const bytes = await carBytes([dag.root], dag.blocks)
    for (const size of [1, 2, 3, 7, 61, 4096, 5003, bytes.byteLength]) {
      const got = await readAll(bytes, 1024 * 1024, size)
      assert.deepEqual(got.map(g => g.cid), dag.blocks.map(b => b.cid.toString()), `chunks of ${size}`)
      for (const [i, g] of got.entries()) assert.ok(Buffer.from(g.bytes).equals(Buffer.from(dag.blocks[i].bytes)), `chunks of ${size}, block ${i}`)
    }
  })

  it('writes what @ipld/car reads', () => {
    const parts = [carHeader([dag.root])]
    for (const b of dag.blocks) parts.push(carSectionPrefix(b.cid, b.bytes.byteLength), b.bytes)
    const reader = CarBufferReader.fromBytes(new Uint8Array(Buffer.concat(parts)))
    assert.deepEqual(reader.getRoots().map(String), [dag.root.toString()])
    assert.deepEqual(reader.blocks().map(b => b.cid.toString()), dag.blocks.map(b => b.cid.toString()))
  })

  it('refuses a section larger than a block before reading it', async () => {
    const header = carHeader([dag.root])
    const huge = new Uint8Array(varint.encodingLength(1 << 30))
    varint.encodeTo(1 << 30, huge, 0)
    const err = await readAll(new Uint8Array(Buffer.concat([header, huge, new Uint8Array(100)]))).catch(e => e)
    assert.ok(isSwarmpackError(err, 'ERR_HTTP_TOO_LARGE'))
    const big = new Uint8Array(2000)
    const bigBlock = { cid: rawCid(big), bytes: big }
    const err2 = await readAll(await carBytes([bigBlock.cid], [bigBlock]), 1000).catch(e => e)
    assert.ok(isSwarmpackError(err2, 'ERR_HTTP_TOO_LARGE'))
  })

  it('refuses truncated and malformed CARs with ERR_HTTP_BAD_CAR', async () => {
    const bytes = await carBytes([dag.root], dag.blocks)
    const bad = [
      bytes.subarray(0, bytes.byteLength - 10),
      bytes.subarray(0, 5),
      new Uint8Array(0),
      new Uint8Array([0x05, 1, 2, 3, 4, 5]),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    ]
    for (const b of bad) {
      const err = await readAll(b).catch(e => e)
      assert.ok(isSwarmpackError(err, 'ERR_HTTP_BAD_CAR') || isSwarmpackError(err, 'ERR_HTTP_TOO_LARGE'), `${String(err)}`)
    }
  })
})
