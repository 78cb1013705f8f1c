import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CarBufferReader } from '@ipld/car/buffer-reader'
import { FsBlockstore, isSwarmpackError, pack, unpack, verifyBlock } from '@swarmpack/core'
import type { CID } from 'multiformats/cid'
import { HttpProvider, exportHttpMirror, mirrorCarPath, startGatewayServer } from '../src/index.js'
import { startStaticServer, type TestServer } from './helpers/servers.js'

/** A real package: a few files and a directory, one file several chunks long. */
async function writePackageDir (dir: string, bigSize = 3 * 1024 * 1024): Promise<void> {
  await mkdir(join(dir, 'lib'), { recursive: true })
  await writeFile(join(dir, 'README.md'), '# demo\n')
  await writeFile(join(dir, 'lib', 'index.js'), 'export const answer = 42\n')
  await writeFile(join(dir, 'lib', 'data.bin'), randomBytes(bigSize))
}

describe('mirror export and fetching a packed package over HTTP', () => {
  let tmp: string
  let store: FsBlockstore
  let root: CID
  let blocks = 0
  let mirror: TestServer

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'swarmpack-http-export-'))
    await writePackageDir(join(tmp, 'src'))
    store = await FsBlockstore.open(join(tmp, 'store'), { fsync: false })
    const packed = await pack(join(tmp, 'src'), { name: 'demo', version: '1.0.0' }, { blockstore: store })
    root = packed.root
    blocks = packed.blocks
  })
  after(async () => {
    await mirror?.close()
    await store?.close()
    await rm(tmp, { recursive: true, force: true })
  })

  it('exports the static layout plus index heads, checking head ids first', async () => {
    const dir = join(tmp, 'mirror')
    const head = new Uint8Array(randomBytes(200))
    const report = await exportHttpMirror(store, [root], dir, { fsync: false, cars: true, heads: [{ indexerId: 'acme-index', bytes: head }] })
    assert.equal(report.blocks, blocks)
    const car = CarBufferReader.fromBytes(new Uint8Array(await readFile(join(dir, ...mirrorCarPath(root).split('/')))))
    assert.deepEqual(car.getRoots().map(String), [root.toString()])
    assert.equal(car.blocks().length, blocks)
    for (const b of car.blocks()) verifyBlock(b.cid, b.bytes)
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'indexes', 'acme-index', 'head'))), head)
    assert.equal((await readFile(join(dir, 'ipfs', 'bafkqaaa'))).byteLength, 0)
    const other = join(tmp, 'mirror-bad')
    await assert.rejects(exportHttpMirror(store, [root], other, { heads: [{ indexerId: '../escape', bytes: head }] }),
      (err: unknown) => isSwarmpackError(err, 'ERR_INVALID_ARGUMENT'))
    await assert.rejects(access(other), 'nothing written for a bad request')
  })

  it('fetches and unpacks the package from the exported mirror over HTTP', async () => {
    mirror = await startStaticServer(join(tmp, 'mirror'))
    const p = new HttpProvider({ mirrors: [mirror.url] })
    try {
      let n = 0
      for await (const _ of p.getDag(root)) n++
      assert.equal(n, blocks)
      const out = join(tmp, 'out-static')
      await unpack(root, p, out)
      assert.deepEqual(await readFile(join(out, 'lib', 'data.bin')), await readFile(join(tmp, 'src', 'lib', 'data.bin')))
    } finally {
      await p.close()
    }
  })

  it('serves the node store as a gateway: the whole package in one CAR request', async () => {
    const gw = await startGatewayServer({ blockstore: store })
    const p = new HttpProvider({ mirrors: [gw.url] })
    try {
      let n = 0
      for await (const _ of p.getDag(root)) n++
      assert.equal(n, blocks)
      assert.equal(p.stats().requests, 1)
      const out = join(tmp, 'out-gw')
      await unpack(root, p, out)
      assert.equal(await readFile(join(out, 'README.md'), 'utf8'), '# demo\n')
    } finally {
      await p.close()
      await gw.close()
    }
  })
})
