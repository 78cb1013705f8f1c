/**
 * The HTTP provider against nginx from Debian's packages serving an exported mirror: the setup an
 * organisation runs. Skips only when nginx is not installed.
 */
import { randomBytes } from 'node:crypto'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FsBlockstore, isSwarmpackError, mirrorBlockPath, pack, rawCid, unpack, verifyBlock } from '@swarmpack/core'
import { HttpProvider, exportHttpMirror } from '@swarmpack/http-provider'
import type { CID } from 'multiformats/cid'
import { NGINX, startNginx, type TestNginx } from '../packages/http-provider/test/helpers/nginx.js'
import { startProxy } from '../packages/http-provider/test/helpers/proxy.js'
import { startStaticServer, type TestServer } from '../packages/http-provider/test/helpers/servers.js'

const skip = NGINX === undefined ? 'nginx is not installed (apt-get install -y nginx-light); skipping the nginx mirror tests' : false

describe('HTTP mirror served by nginx', { skip }, () => {
  let tmp: string
  let store: FsBlockstore
  let root: CID
  let blocks: number
  const blockCids: CID[] = []
  let nginx: TestNginx
  let corrupt: TestNginx
  let victim: CID
  const closers: Array<() => Promise<void>> = []

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'swarmpack-http-nginx-'))
    const src = join(tmp, 'src')
    await mkdir(join(src, 'bin'), { recursive: true })
    await writeFile(join(src, 'bin', 'tool'), randomBytes(6 * 1024 * 1024), { mode: 0o755 })
    await writeFile(join(src, 'notes.txt'), 'hello from the mirror\n')
    store = await FsBlockstore.open(join(tmp, 'store'), { fsync: false })
    const packed = await pack(src, { name: 'nginx-demo', version: '2.0.0' }, { blockstore: store })
    root = packed.root
    blocks = packed.blocks
    await exportHttpMirror(store, [root], join(tmp, 'mirror'), { fsync: false, cars: true, onProgress: e => { blockCids.push((e.detail as { cid: CID }).cid) } })
    // A second mirror whose copy of one chunk is corrupted on disk.
    victim = blockCids.find(c => c.code === 0x55) as CID
    await cp(join(tmp, 'mirror'), join(tmp, 'mirror-corrupt'), { recursive: true })
    // No package CARs there: the corrupt mirror answers raw blocks only.
    await rm(join(tmp, 'mirror-corrupt', 'car'), { recursive: true })
    const victimPath = join(tmp, 'mirror-corrupt', mirrorBlockPath(victim))
    const bytes = await readFile(victimPath)
    bytes[bytes.byteLength >> 1] ^= 0x01
    await writeFile(victimPath, bytes)
    // A file far larger than any block, where a block should be.
    await writeFile(join(tmp, 'mirror-corrupt', mirrorBlockPath(rawCid(new Uint8Array([1])))), Buffer.alloc(40 * 1024 * 1024, 1))
    nginx = await startNginx(join(tmp, 'mirror')) as TestNginx
    corrupt = await startNginx(join(tmp, 'mirror-corrupt')) as TestNginx
    closers.push(nginx.close, corrupt.close)
  })
  after(async () => {
    for (const close of closers) await close().catch(() => {})
    await store?.close()
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true })
  })

  it('answers the probe and serves blocks as application/vnd.ipld.raw', async () => {
    const probe = await fetch(`${nginx.url}ipfs/bafkqaaa?format=raw`)
    assert.equal(probe.status, 200)
    assert.equal((await probe.arrayBuffer()).byteLength, 0)
    const res = await fetch(`${nginx.url}ipfs/${root.toString()}?format=raw`, { headers: { accept: 'application/vnd.ipld.raw' } })
    assert.equal(res.headers.get('content-type'), 'application/vnd.ipld.raw')
    verifyBlock(root, new Uint8Array(await res.arrayBuffer()))
    assert.equal((await fetch(nginx.url)).status, 404, 'no listing')
    assert.equal((await fetch(`${nginx.url}ipfs/`)).status, 404, 'no listing')
  })

  it('answers ?format=car for a package root with the exported CAR file, and refuses other CAR requests', async () => {
    const car = await fetch(`${nginx.url}ipfs/${root.toString()}?format=car&dag-scope=all`, { headers: { accept: 'application/vnd.ipld.car' } })
    assert.equal(car.status, 200)
    assert.match(String(car.headers.get('content-type')), /^application\/vnd\.ipld\.car/)
    await car.arrayBuffer()
    assert.equal((await fetch(`${nginx.url}ipfs/${root.toString()}?format=car&dag-scope=block`)).status, 400)
    assert.equal((await fetch(`${nginx.url}ipfs/${victim.toString()}?format=car`)).status, 404)
    assert.equal((await fetch(`${nginx.url}car/${root.toString()}.car`)).status, 404, 'the CAR directory is not served directly')
  })

  it('fetches and unpacks a whole package in one CAR request', async () => {
    const p = new HttpProvider({ mirrors: [nginx.url] })
    try {
      const out = join(tmp, 'out')
      let n = 0
      for await (const b of p.getDag(root)) { verifyBlock(b.cid, b.bytes); n++ }
      assert.equal(n, blocks)
      assert.equal(p.stats().requests, 1, 'one request for the whole package')
      await unpack(root, p, out)
      assert.deepEqual(await readFile(join(out, 'bin', 'tool')), await readFile(join(tmp, 'src', 'bin', 'tool')))
    } finally {
      await p.close()
    }
  })

  it('fetches raw blocks where the mirror has no CAR; rejects the corrupted block, takes it from the next mirror', async () => {
    const p = new HttpProvider({ mirrors: [{ url: corrupt.url }, { url: nginx.url, car: false }], concurrency: 4 })
    try {
      const got = new Map<string, string>()
      for await (const b of p.getDag(root)) got.set(b.cid.toString(), b.source)
      assert.equal(got.size, blocks)
      assert.ok(p.stats().requests >= blocks, 'one request per block')
      assert.equal(got.get(victim.toString()), nginx.url)
      const snap = p.stats().mirrors.find(m => m.url === corrupt.url)
      assert.equal(snap?.badData, 1)
      assert.equal(snap?.healthy, false)
    } finally {
      await p.close()
    }
  })

  it('raises ERR_NOT_FOUND for a block no mirror has, and refuses an oversized file unread', async () => {
    const p = new HttpProvider({ mirrors: [nginx.url, corrupt.url], retries: 0 })
    try {
      await assert.rejects(p.get(rawCid(new Uint8Array([2]))), (err: unknown) => isSwarmpackError(err, 'ERR_NOT_FOUND'))
      const before = p.stats().bytes
      const err = await p.get(rawCid(new Uint8Array([1]))).catch(e => e)
      assert.ok(isSwarmpackError(err))
      assert.ok((err.details.errors as Array<{ code: string }>).some(e => e.code === 'ERR_HTTP_TOO_LARGE'))
      assert.equal(p.stats().bytes, before, 'nothing of the 40 MiB body was kept')
    } finally {
      await p.close()
    }
  })

  it('works through a forward proxy', async () => {
    const proxy = await startProxy()
    const p = new HttpProvider({ mirrors: [nginx.url], proxy: { http: proxy.url } })
    try {
      let n = 0
      for await (const _ of p.getDag(root)) n++
      assert.equal(n, blocks)
      assert.ok(proxy.seen.some(s => s.includes(`127.0.0.1:${nginx.port}`)), 'requests went through the proxy')
    } finally {
      await p.close()
      await proxy.close()
    }
  })

  it('finishes the package from a static server when nginx goes down mid-package', async () => {
    const spare = await startNginx(join(tmp, 'mirror')) as TestNginx
    const backup: TestServer = await startStaticServer(join(tmp, 'mirror'))
    closers.push(backup.close)
    // a request cut by nginx's exit fails at once; the timeout only guards a hung one, and must not
    // fire on a slow but healthy request on a loaded machine
    const p = new HttpProvider({ mirrors: [{ url: spare.url, car: false }, backup.url], concurrency: 2, timeoutMs: 20_000 })
    try {
      const sources = new Set<string>()
      let n = 0
      for await (const b of p.getDag(root)) {
        sources.add(b.source)
        if (++n === 3) await spare.close()
      }
      assert.equal(n, blocks)
      assert.deepEqual(sources, new Set([spare.url, backup.url]))
    } finally {
      await p.close()
      await spare.close()
    }
  })
})
