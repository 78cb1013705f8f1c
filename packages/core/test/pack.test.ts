import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, lstat, symlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CoreErrorCode, FsBlockstore, MAX_BLOCK_SIZE, isSwarmpackError, listManifestCids, pack, storeProvider, unpack } from '@swarmpack/core'
import type { PackageMetadata } from '@swarmpack/core'

let tmp: string
before(async () => { tmp = await mkdtemp(join(tmpdir(), 'swarmpack-pack-')) })
after(async () => { await rm(tmp, { recursive: true, force: true }) })

const meta: PackageMetadata = { name: 'demo', version: '1.0.0', description: 'test tree', entry: 'bin/run.sh', platform: 'linux-x64' }

/** Deterministic pseudo-random bytes. */
function bytes (n: number, seed: number): Buffer {
  const out = Buffer.alloc(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; out[i] = x & 0xff }
  return out
}

/** A real tree: nested dirs, an empty dir and file, a multi-MiB file, an executable, symlinks inside the root. */
async function makeTree (dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true })
  await mkdir(join(dir, 'lib/deep/er/still'), { recursive: true })
  await mkdir(join(dir, 'empty-dir'))
  await writeFile(join(dir, 'bin/run.sh'), '#!/bin/sh\necho hi\n')
  await chmod(join(dir, 'bin/run.sh'), 0o755)
  await writeFile(join(dir, 'empty.txt'), '')
  await writeFile(join(dir, 'lib/deep/er/still/data.bin'), bytes(5 * 1024 * 1024 + 17, 7))
  await writeFile(join(dir, 'lib/index.js'), 'export const x = 1\n')
  await writeFile(join(dir, 'README.md'), '# demo\n')
  await symlink('lib/index.js', join(dir, 'main.js'))
  await symlink('../index.js', join(dir, 'lib/deep/up.js'))
  await symlink('../bin', join(dir, 'lib/bin-link'))
}

async function snapshot (dir: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const p = rel === '' ? name : `${rel}/${name}`
    const st = await lstat(join(dir, p))
    if (st.isDirectory()) { out[p] = `dir`; Object.assign(out, await snapshot(dir, p)) } else if (st.isSymbolicLink()) out[p] = `link:${await readlink(join(dir, p))}`
    else out[p] = `file:${(st.mode & 0o777).toString(8)}:${createHash('sha256').update(await readFile(join(dir, p))).digest('hex')}`
  }
  return out
}

test('a real tree round-trips through pack and unpack (memory store)', async () => {
  const src = join(tmp, 'src1')
  await makeTree(src)
  const store = new MemoryBlockstore()
  const events: string[] = []
  const r = await pack(src, meta, { blockstore: store, onProgress: e => events.push(e.type) })
  assert.equal(r.totalSize, 5 * 1024 * 1024 + 17 + 18 + 19 + 7)
  assert.ok(r.blocks > 5 * 1024 * 1024 / (256 * 1024))
  assert.ok(events.includes('swarmpack:pack:chunk') && events.includes('swarmpack:pack:file'))
  const big = r.manifest.entries.find(e => e.path === 'lib/deep/er/still/data.bin')
  assert.ok(big?.type === 'file' && big.chunks.length > 1 && big.chunks.every(([, n]) => n <= MAX_BLOCK_SIZE))
  assert.equal(r.manifest.entries.find(e => e.path === 'bin/run.sh')?.type === 'file' && (r.manifest.entries.find(e => e.path === 'bin/run.sh') as { mode: number }).mode, 0o755)
  // Every block the manifest reaches is in the store.
  const provider = storeProvider(store)
  const cids = await listManifestCids(r.root, provider)
  assert.equal(cids.length, r.blocks)
  for (const cid of cids) assert.ok(await store.has(cid))

  const out = join(tmp, 'out1')
  const res = await unpack(r.root, provider, out)
  assert.equal(res.totalSize, r.totalSize)
  assert.deepEqual(await snapshot(out), await snapshot(src))
  assert.equal((await stat(join(out, 'bin/run.sh'))).mode & 0o777, 0o755)
  assert.deepEqual((await readdir(tmp)).filter(n => n.includes('.staging-')), [])
  // The target exists now: a second unpack refuses to touch it.
  await assert.rejects(unpack(r.root, provider, out), (e: unknown) => isSwarmpackError(e, CoreErrorCode.TARGET_EXISTS))
})

test('packing is deterministic: same tree, same root; a changed byte changes it', async () => {
  const a = join(tmp, 'det-a'); const b = join(tmp, 'det-b')
  await makeTree(a); await makeTree(b)
  const ra = await pack(a, meta, { blockstore: new MemoryBlockstore() })
  const rb = await pack(b, meta, { blockstore: new MemoryBlockstore() })
  assert.equal(ra.root.toString(), rb.root.toString())
  await writeFile(join(b, 'README.md'), '# demo!\n')
  const rc = await pack(b, meta, { blockstore: new MemoryBlockstore() })
  assert.notEqual(rc.root.toString(), ra.root.toString())
})

test('round trip through the on-disk FsBlockstore, with a 12 MiB file', async () => {
  const src = join(tmp, 'src-fs')
  await mkdir(join(src, 'a/b'), { recursive: true })
  await writeFile(join(src, 'a/b/big.bin'), bytes(12 * 1024 * 1024, 9))
  await writeFile(join(src, 'a/small.txt'), 'small')
  const store = await FsBlockstore.open(join(tmp, 'store'), { fsync: false })
  try {
    const r = await pack(src, { name: '@t/fs', version: '2.0.0' }, { blockstore: store })
    const out = join(tmp, 'out-fs')
    await unpack(r.root, storeProvider(store), out)
    assert.deepEqual(await snapshot(out), await snapshot(src))
  } finally {
    await store.close()
  }
})

test('into the durable FsBlockstore, read buffers are reused only once their chunks are written (calling thread and worker)', async () => {
  // Many files of odd sizes and several MiB-sized ones, so pieces carry bytes into the next one and
  // buffers come back to the pool while other writes are still waiting for their batch's sync.
  const src = join(tmp, 'src-reuse')
  await mkdir(join(src, 'd'), { recursive: true })
  for (let i = 0; i < 6; i++) await writeFile(join(src, `big-${i}.bin`), bytes(3 * 1024 * 1024 + i * 7919, 100 + i))
  for (let i = 0; i < 40; i++) await writeFile(join(src, 'd', `small-${i}`), bytes(1000 + i * 3001, 200 + i))
  const m = { name: 'reuse', version: '1.0.0' }
  const expected = await pack(src, m, { blockstore: new MemoryBlockstore(), workers: 0 })
  for (const workers of [0, 1] as const) {
    const store = await FsBlockstore.open(join(tmp, `store-reuse-${workers}`), { fsync: true })
    try {
      assert.equal(store.releasesPutBytes, true)
      const r = await pack(src, m, { blockstore: store, workers, window: 64 })
      assert.equal(r.root.toString(), expected.root.toString())
      // every stored block re-hashed from disk: a buffer refilled before its write would show here
      const report = await store.verify()
      assert.deepEqual(report.corrupt, [])
      assert.equal(report.checked, r.blocks)
      const out = join(tmp, `out-reuse-${workers}`)
      await unpack(r.root, storeProvider(store), out)
      assert.deepEqual(await snapshot(out), await snapshot(src))
    } finally {
      await store.close()
    }
  }
})

test('pack refuses symlinks leaving the root, fifos/sockets, and bad metadata', async () => {
  const esc = join(tmp, 'escape')
  await mkdir(esc)
  await symlink('../../etc/passwd', join(esc, 'evil'))
  await assert.rejects(pack(esc, meta, { blockstore: new MemoryBlockstore() }), (e: unknown) => isSwarmpackError(e, CoreErrorCode.UNSAFE_PATH))
  const abs = join(tmp, 'absolute')
  await mkdir(abs)
  await symlink('/etc/passwd', join(abs, 'evil'))
  await assert.rejects(pack(abs, meta, { blockstore: new MemoryBlockstore() }), (e: unknown) => isSwarmpackError(e, CoreErrorCode.UNSAFE_PATH))

  const sock = join(tmp, 'sock')
  await mkdir(sock)
  const server = createServer()
  await new Promise<void>(resolve => server.listen(join(sock, 's.sock'), resolve))
  try {
    await assert.rejects(pack(sock, meta, { blockstore: new MemoryBlockstore() }), (e: unknown) => isSwarmpackError(e, CoreErrorCode.UNSAFE_PATH))
  } finally {
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  const ok = join(tmp, 'ok')
  await mkdir(ok)
  await assert.rejects(pack(ok, { name: 'Bad', version: '1.0.0' }, { blockstore: new MemoryBlockstore() }), (e: unknown) => isSwarmpackError(e, CoreErrorCode.INVALID_NAME))
  await assert.rejects(pack(ok, { name: 'ok', version: 'one' }, { blockstore: new MemoryBlockstore() }), (e: unknown) => isSwarmpackError(e, CoreErrorCode.INVALID_VERSION))
})

test('pack stops on abort with ERR_ABORTED', async () => {
  const src = join(tmp, 'abort')
  await mkdir(src)
  await writeFile(join(src, 'f.bin'), bytes(4 * 1024 * 1024, 3))
  const ac = new AbortController()
  const p = pack(src, meta, { blockstore: new MemoryBlockstore(), signal: ac.signal, onProgress: () => ac.abort() })
  await assert.rejects(p, (e: unknown) => isSwarmpackError(e, CoreErrorCode.ABORTED) || (e as Error).name === 'AbortError')
})

test('an insertion early in a big file adds only a few new blocks', async () => {
  const src = join(tmp, 'ins'); await mkdir(src)
  const data = bytes(16 * 1024 * 1024, 11)
  await writeFile(join(src, 'f.bin'), data)
  const store = new MemoryBlockstore()
  const v1 = await pack(src, { name: 'ins', version: '1.0.0' }, { blockstore: store })
  await writeFile(join(src, 'f.bin'), Buffer.concat([data.subarray(0, 100_000), Buffer.from('inserted!'), data.subarray(100_000)]))
  let fresh = 0
  const seen = new Set((await listManifestCids(v1.root, storeProvider(store))).map(String))
  const v2 = await pack(src, { name: 'ins', version: '1.0.1' }, { blockstore: store })
  for (const cid of await listManifestCids(v2.root, storeProvider(store))) if (!seen.has(cid.toString())) fresh++
  assert.ok(fresh <= 3, `${fresh} new blocks (root, 1-2 chunks)`)
})

test('pack into FsBlockstore skips the re-hash internally; put from outside still verifies', async () => {
  const src = join(tmp, 'hashed-src'); await mkdir(src)
  const data = Buffer.alloc(600 * 1024)
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 23
  await writeFile(join(src, 'data.bin'), data)
  const store = await FsBlockstore.open(join(tmp, 'hashed-store'), { fsync: false })
  try {
    const r = await pack(src, { name: 'h', version: '1.0.0' }, { blockstore: store })
    // every block pack stored is whole and matches its CID
    const report = await store.verify()
    assert.equal(report.corrupt.length, 0)
    assert.ok(report.checked >= r.blocks)
    // the no-rehash path is not part of the public API
    const core = await import('@swarmpack/core')
    assert.equal('PUT_HASHED' in core, false)
    // a put from outside with the wrong bytes is still refused
    const [cid] = (await listManifestCids(r.root, storeProvider(store))).slice(-1)
    await assert.rejects(store.put(cid, new Uint8Array([1, 2, 3])), (e: unknown) => isSwarmpackError(e, CoreErrorCode.BLOCK_MISMATCH))
    const out = join(tmp, 'hashed-out')
    await unpack(r.root, storeProvider(store), out)
    assert.deepEqual(await readFile(join(out, 'data.bin')), data)
  } finally {
    await store.close()
  }
})
