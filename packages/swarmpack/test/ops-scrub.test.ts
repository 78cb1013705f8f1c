/**
 * Scrub (R5): corrupt store blocks are found and fetched again from a source; modified, deleted
 * and re-moded installed files are found and restored from the store; releases revoked or removed
 * upstream are reported (and uninstalled when the policy says so); reads are rate-limited.
 */
import assert from 'node:assert/strict'
import { chmod, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { RAW_CODEC, decodeManifest } from '@swarmpack/core'
import { corruptRawBlock } from '@swarmpack/core/testing'
import { SwarmpackNodeErrorCode, type ScrubReport, type Swarmpack } from '../src/index.js'
import { seededBytes } from './helpers/publisher.js'
import { World } from './helpers/world.js'
import { collect, waitFor } from './helpers/ops.js'

const DATA = seededBytes(512 * 1024, 11)

/** Flips a byte of a block in the node's LMDB store; the node must be stopped (the store closed). */
async function corruptBlock (dataDir: string, cid: CID): Promise<void> {
  await corruptRawBlock(join(dataDir, 'store'), CID.createV1(RAW_CODEC, cid.multihash).toString(), 10)
}

async function chunksOf (node: Swarmpack, root: string, path: string): Promise<Array<[CID, number]>> {
  const m = await decodeManifest(CID.parse(root), { get: async c => node.store.getBytes(c) })
  const e = m.entries.find(x => x.path === path)
  assert.ok(e?.type === 'file')
  return e.chunks
}

describe('ops: scrub', () => {
  let w: World
  before(async () => {
    w = await World.create()
    await w.publish('b', '1.0.0')
    await w.publish('a', '1.0.0', { b: '^1' }, DATA)
    await w.pub.publishIndex()
  })
  after(async () => { await w.close() })

  it('finds a corrupt block and modified, deleted and re-moded files; fetches and restores them', async () => {
    let node = await w.node('scrub', { a: '^1.0.0' }, {}, { scrub: { intervalMs: 0 } })
    await node.apply()
    const a = (await node.current())?.packages.a
    assert.ok(a !== undefined)
    const clean = await node.scrub()
    assert.equal(clean.ok, true, JSON.stringify(clean))
    assert.ok(clean.store.checked > 0 && clean.installed.files >= 4)

    // damage: one chunk of data.bin rotten in the store, data.bin changed in place, index.js gone, a mode flipped, one file added
    const [chunk] = (await chunksOf(node, a.root, 'data.bin')).slice(1, 2)
    // the block is damaged in the database itself, with the store closed (LMDB allows one opener per process)
    await node.stop()
    await corruptBlock(node.dataDir, chunk[0])
    node = await w.node('scrub', { a: '^1.0.0' }, {}, { scrub: { intervalMs: 0 } })
    const changed = Buffer.from(DATA)
    changed[300_000] ^= 0x01
    await writeFile(join(a.path, 'data.bin'), changed)
    await rm(join(a.path, 'index.js'))
    const bPath = (await node.current())?.packages.b.path as string
    await chmod(join(bPath, 'index.js'), 0o755)
    await writeFile(join(a.path, 'extra.txt'), 'host notes')

    const r = await node.scrub()
    assert.equal(r.ok, false)
    assert.deepEqual(r.store.corrupt.map(c => CID.parse(c.cid).multihash.toString()), [chunk[0].multihash.toString()])
    assert.ok(r.store.refetched.some(c => CID.parse(c).multihash.toString() === chunk[0].multihash.toString()), 'the corrupt pinned block was fetched again from the mirror')
    assert.equal((await node.store.getBytes(chunk[0], { verify: true })).byteLength, chunk[1])
    const found = r.installed.findings.map(f => `${f.name} ${f.path} ${f.problem} ${f.restored}`).sort()
    assert.deepEqual(found, ['a data.bin modified true', 'a index.js deleted true', 'b index.js mode true'])
    assert.deepEqual(r.installed.extra.map(e => `${e.name} ${e.path}`), ['a extra.txt'])
    assert.deepEqual(await readFile(join(a.path, 'data.bin')), Buffer.from(DATA))
    assert.equal(await readFile(join(a.path, 'index.js'), 'utf8'), "export const id = 'a@1.0.0'\n")
    assert.equal((await stat(join(bPath, 'index.js'))).mode & 0o777, 0o644)
    assert.equal(await readFile(join(a.path, 'extra.txt'), 'utf8'), 'host notes', 'files the manifest does not list are left alone')

    const again = await node.scrub()
    assert.equal(again.ok, true, JSON.stringify(again.installed.findings))
    const status = await node.status()
    assert.equal(status.scrub.last?.ok, true)
  })

  it('reads at most rateBytesPerSec', async () => {
    const node = await w.node('slow', { a: '^1.0.0' }, {}, { scrub: { intervalMs: 0 } })
    await node.apply()
    const rate = 1024 * 1024
    const r = await node.scrub({ rateBytesPerSec: rate, indexes: false })
    const bytes = r.store.bytes + r.installed.bytes
    assert.ok(bytes > 1024 * 1024, `read ${bytes} bytes`)
    assert.ok(r.ms >= (bytes / rate) * 1000 - 50, `${bytes} bytes at ${rate} B/s took ${r.ms} ms`)
    assert.ok(r.throttledMs > 0)
  })

  it('a scheduled scrub restores a deleted file on its own', async () => {
    const node = await w.node('scheduled', { a: '^1.0.0' }, {}, { scrub: { intervalMs: 300, rateBytesPerSec: 64 * 1024 * 1024 } })
    await node.apply()
    const done = collect<ScrubReport>(node.events, 'scrub:done')
    const a = (await node.current())?.packages.a
    await rm(join(a?.path as string, 'data.bin'))
    const r = await waitFor(() => done.find(x => x.installed.findings.length > 0), 'a scheduled scrub to find the deleted file', 60_000)
    assert.deepEqual(r.installed.findings.map(f => `${f.path} ${f.problem} ${f.restored}`), ['data.bin deleted true'])
    assert.deepEqual(await readFile(join(a?.path as string, 'data.bin')), Buffer.from(DATA))
  })
})

describe('ops: scrub against the followed indexes', () => {
  let w: World
  before(async () => {
    w = await World.create()
    await w.publish('b', '1.0.0')
    await w.publish('a', '1.0.0', { b: '^1' })
    await w.publish('c', '1.0.0')
    await w.pub.publishIndex()
  })
  after(async () => { await w.close() })

  it('reports releases removed or revoked upstream; policy uninstall removes the modules using them', async () => {
    const node = await w.node('upstream', { a: '^1.0.0', c: '^1.0.0' }, {}, { scrub: { intervalMs: 0 } })
    await node.apply()
    const gen = (await node.current())?.number

    w.pub.entries.get('b')?.set('1.0.0', { removed: 'withdrawn by the publisher' })
    await w.pub.publishIndex()
    const removed = await node.scrub({ store: false, installed: false })
    assert.deepEqual(removed.indexes.findings.map(f => `${f.name} ${f.problem} ${f.code} ${f.trustCode}`), [`b removed ${SwarmpackNodeErrorCode.PACKAGE_REMOVED} ERR_TRUST_NOT_LISTED`])
    assert.equal(removed.indexes.follow[0].version, 2)
    assert.equal((await node.current())?.number, gen, 'policy report changes nothing')

    const uninstalled = await node.scrub({ store: false, installed: false, revoked: 'uninstall' })
    assert.deepEqual(uninstalled.indexes.uninstalled, ['a'])
    const now = await node.current()
    assert.deepEqual(Object.keys(now?.packages ?? {}).sort(), ['c'])
    assert.deepEqual(Object.keys(node.config.modules), ['c'])

    w.pub.revokePublisher()
    await w.pub.publishIndex()
    const revoked = await node.scrub({ store: false, installed: false })
    assert.deepEqual(revoked.indexes.findings.map(f => `${f.name} ${f.problem} ${f.code}`), [`c revoked ${SwarmpackNodeErrorCode.PACKAGE_REVOKED}`])
    assert.equal(revoked.ok, false)
  })
})
