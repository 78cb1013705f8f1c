import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { MemoryBlockstore } from 'blockstore-core/memory'
import type { CID } from 'multiformats/cid'
import { CoreErrorCode, MANIFEST_FORMAT, PackageErrorCode, encodeCborBlock, isSwarmpackError, pack, rawCid, storeProvider, unpack } from '@swarmpack/core'
import type { Block } from '@swarmpack/core'

let tmp: string
before(async () => { tmp = await mkdtemp(join(tmpdir(), 'swarmpack-unpack-')) })
after(async () => { await rm(tmp, { recursive: true, force: true }) })

const hello = new TextEncoder().encode('hello world')
const helloCid = rawCid(hello)

/** A Provider-shaped source over a map of blocks (the bytes it returns are not trusted by unpack). */
function source (blocks: Array<Block | { cid: CID, bytes: Uint8Array }>): { get: (cid: CID) => Promise<Uint8Array> } {
  const map = new Map(blocks.map(b => [b.cid.toString(), b.bytes]))
  return {
    async get (cid: CID) {
      const b = map.get(cid.toString())
      if (b === undefined) throw Object.assign(new Error('not found'), { code: 'ERR_NOT_FOUND' })
      return b
    }
  }
}

/** A hand-made root block: lets a test put anything in the manifest, bypassing the encoder's checks. */
function root (entries: unknown[], over: Record<string, unknown> = {}): Block {
  let total = 0
  for (const e of entries) if ((e as { type: string }).type === 'file') total += (e as { size: number }).size
  return encodeCborBlock({
    format: MANIFEST_FORMAT, name: 'evil', version: '1.0.0', description: '', categories: [], tags: [], dependencies: {},
    optionalDependencies: {}, platform: 'any', totalSize: total, entryCount: entries.length, entries, ...over
  })
}

const file = (path: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'file', path, mode: 0o644, size: hello.length, chunks: [[helloCid, hello.length]], ...extra })

let n = 0
/** Unpacks and expects a typed refusal, then checks nothing is left under the target or a staging name. */
async function refuses (entries: unknown[], code: string, blocks: Array<{ cid: CID, bytes: Uint8Array }> = [{ cid: helloCid, bytes: hello }], over: Record<string, unknown> = {}): Promise<void> {
  const r = root(entries, over)
  const parent = join(tmp, `case-${n++}`)
  await mkdir(parent)
  const target = join(parent, 'pkg')
  await assert.rejects(unpack(r.cid, source([r, ...blocks]), target), (e: unknown) => isSwarmpackError(e, code), JSON.stringify(entries))
  assert.deepEqual(await readdir(parent), [], 'nothing left behind')
}

test('a hand-made valid manifest unpacks (the control case)', async () => {
  const r = root([{ type: 'dir', path: 'a', mode: 0o755 }, file('a/b.txt'), { type: 'symlink', path: 'l', target: 'a/b.txt' }])
  const target = join(tmp, 'control')
  await unpack(r.cid, source([r, { cid: helloCid, bytes: hello }]), target)
  assert.deepEqual((await readdir(target)).sort(), ['a', 'l'])
})

test('absolute paths, "..", NUL, and non-canonical spellings are refused', async () => {
  for (const p of ['/etc/evil', '../evil', 'a/../../evil', 'a/..', 'a\u0000b', 'a/./b', 'a//b', 'a/', 'a\\b', './a', 'C:\\evil']) {
    await refuses([file(p)], CoreErrorCode.UNSAFE_PATH)
  }
})

test('duplicate paths are refused, also by case and Unicode normalisation', async () => {
  await refuses([file('a'), file('a')], CoreErrorCode.UNSAFE_PATH)
  await refuses([file('Read.me'), file('READ.ME')], CoreErrorCode.UNSAFE_PATH)
  await refuses([file('caf\u00e9'), file('cafe\u0301')], CoreErrorCode.UNSAFE_PATH)
  await refuses([{ type: 'dir', path: 'x', mode: 0o755 }, file('x')], CoreErrorCode.UNSAFE_PATH)
})

test('links leaving the root and writes through links are refused', async () => {
  await refuses([{ type: 'symlink', path: 'l', target: '../../outside' }], CoreErrorCode.UNSAFE_PATH)
  await refuses([{ type: 'symlink', path: 'l', target: '/etc' }], CoreErrorCode.UNSAFE_PATH)
  await refuses([{ type: 'symlink', path: 'd/l', target: '../..' }], CoreErrorCode.UNSAFE_PATH)
  await refuses([{ type: 'symlink', path: 'l', target: 'x' }, file('l/inside')], CoreErrorCode.UNSAFE_PATH)
  // Each link resolves inside on its own, but A walks through B (which points shallower) and escapes.
  await refuses([
    { type: 'symlink', path: 'd1/d2/B', target: '../../e' },
    { type: 'symlink', path: 'd1/d2/A', target: 'B/../../../x' }
  ], CoreErrorCode.UNSAFE_PATH)
})

test('device files, fifos and special modes are refused', async () => {
  await refuses([{ type: 'device', path: 'sda', mode: 0o644 }], CoreErrorCode.UNSAFE_PATH)
  await refuses([{ type: 'chardev', path: 'null' }], CoreErrorCode.UNSAFE_PATH)
  await refuses([{ type: 'fifo', path: 'pipe' }], CoreErrorCode.UNSAFE_PATH)
  await refuses([file('suid', { mode: 0o4755 })], CoreErrorCode.INVALID_MANIFEST)
  await refuses([file('sticky', { mode: 0o1777 })], CoreErrorCode.INVALID_MANIFEST)
})

test('sizes that differ from the manifest are refused', async () => {
  // The chunk list sums to the declared size, but the block itself is longer.
  await refuses([file('f', { size: 5, chunks: [[helloCid, 5]] })], CoreErrorCode.SIZE_MISMATCH)
  // Declared size disagrees with the chunk list.
  await refuses([file('f', { size: 99 })], CoreErrorCode.SIZE_MISMATCH)
  // totalSize disagrees with the files.
  await refuses([file('f')], CoreErrorCode.SIZE_MISMATCH, undefined, { totalSize: 1 })
})

test('a corrupted block is detected; nothing is left under the target name', async () => {
  const src = join(tmp, 'corrupt-src')
  await mkdir(join(src, 'd'), { recursive: true })
  const data = Buffer.alloc(3 * 1024 * 1024)
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24
  await writeFile(join(src, 'd/data.bin'), data)
  await writeFile(join(src, 'a.txt'), 'first file, written before the bad block')
  const store = new MemoryBlockstore()
  const r = await pack(src, { name: 'c', version: '1.0.0' }, { blockstore: store })
  const entry = r.manifest.entries.find(e => e.path === 'd/data.bin')
  assert.ok(entry?.type === 'file' && entry.chunks.length > 2)
  const victim = entry.chunks[entry.chunks.length - 1][0]
  const provider = storeProvider(store)
  const tampering = {
    async get (cid: CID) {
      const bytes = await provider.get(cid)
      if (!cid.equals(victim)) return bytes
      const bad = bytes.slice(); bad[0] ^= 0xff
      return bad
    }
  }
  const parent = join(tmp, 'corrupt-out'); await mkdir(parent)
  await assert.rejects(unpack(r.root, tampering, join(parent, 'pkg')), (e: unknown) => isSwarmpackError(e, CoreErrorCode.BLOCK_MISMATCH))
  assert.deepEqual(await readdir(parent), [])
  // A missing block fails the same clean way.
  const missing = { async get (cid: CID) { if (cid.equals(victim)) throw new Error('gone'); return await provider.get(cid) } }
  await assert.rejects(unpack(r.root, missing, join(parent, 'pkg')), /gone/)
  assert.deepEqual(await readdir(parent), [])
  // The honest source still works.
  await unpack(r.root, provider, join(parent, 'pkg'))
  assert.deepEqual(await readdir(parent), ['pkg'])
})

test('abort stops unpack and cleans up', async () => {
  const r = root([file('a'), file('b')])
  const parent = join(tmp, 'abort'); await mkdir(parent)
  const ac = new AbortController()
  const p = unpack(r.cid, source([r, { cid: helloCid, bytes: hello }]), join(parent, 'pkg'), { signal: ac.signal, onProgress: (e) => { if (e.type === 'swarmpack:unpack:file') ac.abort() } })
  await assert.rejects(p, (e: unknown) => isSwarmpackError(e, CoreErrorCode.ABORTED))
  assert.deepEqual(await readdir(parent), [])
})

test('missing parents of the target are created; staging stays next to the target', async () => {
  const r = root([file('a.txt')])
  const base = join(tmp, 'parents'); await mkdir(base)
  const target = join(base, 'x', 'y', 'pkg')
  const seen = new Set<string>()
  await unpack(r.cid, source([r, { cid: helloCid, bytes: hello }]), target, {
    onProgress: (e) => { if (e.type === 'swarmpack:unpack:file') for (const n of readdirSync(join(base, 'x', 'y'))) seen.add(n) }
  })
  assert.deepEqual(await readdir(join(base, 'x', 'y')), ['pkg'])
  assert.ok([...seen].some(n => n.startsWith('pkg.staging-')), 'staging was created in the target\'s parent')
  assert.equal(await readFile(join(target, 'a.txt'), 'utf8'), 'hello world')
})

test('a file system error surfaces as ERR_IO with the cause attached', async () => {
  const r = root([file('a.txt')])
  const base = join(tmp, 'io'); await mkdir(base)
  await writeFile(join(base, 'plain-file'), 'not a directory')
  const err = await unpack(r.cid, source([r, { cid: helloCid, bytes: hello }]), join(base, 'plain-file', 'sub', 'pkg')).then(() => undefined, (e: unknown) => e)
  assert.ok(isSwarmpackError(err, PackageErrorCode.IO), `expected ERR_IO, got ${String(err)}`)
  assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOTDIR')
  assert.equal(err.details.errno, 'ENOTDIR')
  assert.deepEqual(await readdir(base), ['plain-file'])
})
