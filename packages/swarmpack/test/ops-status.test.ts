/**
 * Diagnostics (S1, U4) and cache policy (S5, P6) on a node reading a real HTTP mirror:
 * status (heads and where they came from, fetch sources per package, cache, errors with codes,
 * persisted for another process), JSON-lines logs naming fetch sources, doctor's findings
 * (healthy, a corrupt block, a skewed and a dead mirror), gc dry run vs the real gc, and the
 * cache policy evicting obsolete versions when the store is over its limit.
 */
import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { RAW_CODEC, decodeManifest } from '@swarmpack/core'
import { corruptRawBlock } from '@swarmpack/core/testing'
import { SwarmpackNodeErrorCode, createSwarmpack, type LogEntry, type Swarmpack } from '../src/index.js'
import { seededBytes } from './helpers/publisher.js'
import { World, deploymentState } from './helpers/world.js'
import { startStaticServer, waitFor, type StaticServer } from './helpers/ops.js'

/** The first chunk of a's data.bin: the block the doctor test damages. */
async function firstChunk (node: Swarmpack, root: string): Promise<CID> {
  const m = await decodeManifest(CID.parse(root), { get: async c => node.store.getBytes(c) })
  const e = m.entries.find(x => x.type === 'file' && x.path === 'data.bin')
  assert.ok(e?.type === 'file')
  return e.chunks[0][0]
}

describe('ops: status, logs, doctor', () => {
  let w: World
  let mirror: StaticServer
  before(async () => {
    w = await World.create()
    await w.publish('b', '1.0.0')
    await w.publish('a', '1.0.0', { b: '^1' }, seededBytes(300 * 1024, 5))
    await w.pub.publishIndex()
    mirror = await startStaticServer(w.pub.mirrorDir)
  })
  after(async () => {
    await w.close()
    await mirror.close()
  })

  it('status names heads, fetch sources and errors; logs are JSON lines; both survive into another process', async () => {
    const logFile = join(w.dir, 'logs', 'node.jsonl')
    const entries: LogEntry[] = []
    const node = await w.node('status', { a: '^1.0.0' }, { onLog: e => entries.push(e) }, { sources: { mirrors: [{ url: mirror.url }] }, logs: { json: true, file: logFile } })
    await node.apply()
    const s = await node.status()
    assert.equal(s.peer, undefined, 'sharing off: no peer')
    assert.equal(s.generation, 1)
    assert.equal(s.indexers.length, 1)
    assert.equal(s.indexers[0].version, 1)
    assert.ok(s.indexers[0].source?.includes(mirror.url), s.indexers[0].source)
    assert.ok(s.indexers[0].ageMs !== undefined && s.indexers[0].ageMs >= 0 && s.indexers[0].ageMs < 600_000)
    assert.deepEqual(s.packages.map(p => `${p.name}@${p.version}`), ['a@1.0.0', 'b@1.0.0'])
    for (const p of s.packages) {
      assert.ok(p.lastFetch !== undefined, `${p.name} has a last fetch`)
      assert.ok(p.lastFetch.sources.length > 0 && p.lastFetch.sources.every(x => x.kind === 'mirror' && x.source.includes('127.0.0.1')), JSON.stringify(p.lastFetch.sources))
    }
    assert.ok(s.cache.bytes > 300 * 1024 && s.cache.pinnedBytes > 300 * 1024 && s.cache.pinnedBytes <= s.cache.bytes, JSON.stringify(s.cache))
    assert.equal(s.cache.overLimit, false)
    assert.deepEqual(s.errors, [])

    await assert.rejects(node.install({ nosuch: '^1.0.0' }), (err: any) => err.code === SwarmpackNodeErrorCode.UNRESOLVABLE)
    const after1 = await node.status()
    assert.equal(after1.errors[0]?.code, SwarmpackNodeErrorCode.UNRESOLVABLE)

    const fetchLog = entries.find(e => e.event === 'fetch' && e.package === 'a@1.0.0')
    assert.ok(fetchLog !== undefined)
    assert.ok((fetchLog.sources as any[]).some(x => x.source.includes('127.0.0.1')))
    await node.stop()
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as LogEntry)
    assert.ok(lines.some(l => l.event === 'fetch' && l.package === 'a@1.0.0' && (l.sources as any[]).length > 0), 'the JSON log names the sources of the fetch')
    assert.ok(lines.some(l => l.event === 'follow' && String(l.source).includes(mirror.url)))
    assert.ok(lines.some(l => l.event === 'error' && l.code === SwarmpackNodeErrorCode.UNRESOLVABLE))
    assert.ok(lines.every(l => typeof l.time === 'string' && typeof l.level === 'string'))

    // another process (the CLI's `status`, no network) sees the same diagnostics
    const offline = await createSwarmpack({ dataDir: node.dataDir, config: w.config({ a: '^1.0.0' }, { sources: { mirrors: [{ url: mirror.url }] } }), network: false, followOnStart: false, loadOnStart: false })
    try {
      const s2 = await offline.status()
      assert.deepEqual(s2.packages.map(p => p.lastFetch?.sources.length !== undefined && p.lastFetch.sources.length > 0), [true, true])
      assert.ok(s2.indexers[0].source?.includes(mirror.url))
      assert.equal(s2.errors[0]?.code, SwarmpackNodeErrorCode.UNRESOLVABLE)
    } finally {
      await offline.stop()
    }
  })

  it('doctor: healthy, then a corrupt block, a mirror with a skewed clock and a dead mirror, each with a code and a fix', async () => {
    const skewed = await startStaticServer(w.pub.mirrorDir, { dateOffsetMs: 20 * 60_000 })
    const dead = await startStaticServer(w.pub.mirrorDir)
    await dead.close()
    try {
      const node = await w.node('doctor', { a: '^1.0.0' }, {}, { sources: { mirrors: [{ url: mirror.url }] } })
      await node.apply()
      const healthy = await node.doctor({ sample: 1000, timeoutMs: 10_000 })
      assert.equal(healthy.ok, true, JSON.stringify(healthy.findings))
      const by = (r: typeof healthy, check: string): string[] => r.findings.filter(f => f.check === check).map(f => f.status)
      assert.deepEqual(by(healthy, 'mirror'), ['ok'])
      assert.deepEqual(by(healthy, 'head'), ['ok'])
      assert.deepEqual(by(healthy, 'clock'), ['ok'])
      assert.deepEqual(by(healthy, 'store'), ['ok'])
      assert.deepEqual(by(healthy, 'listen'), ['skip'])
      assert.deepEqual(by(healthy, 'upkeep'), ['skip'])

      const a = (await node.current())?.packages.a
      const corrupted = await firstChunk(node, a?.root as string)
      await node.stop()
      // a flipped byte in the LMDB database itself, written with the store closed
      await corruptRawBlock(join(node.dataDir, 'store'), CID.createV1(RAW_CODEC, corrupted.multihash).toString())
      const sick = await w.node('doctor', { a: '^1.0.0' }, {}, { sources: { mirrors: [{ url: mirror.url }, { url: skewed.url }, { url: dead.url }] } })
      const r = await sick.doctor({ sample: 1000, timeoutMs: 10_000 })
      assert.equal(r.ok, false)
      const fails = r.findings.filter(f => f.status === 'fail')
      for (const f of fails) assert.ok(f.code !== undefined && f.fix !== undefined && f.fix.length > 10, JSON.stringify(f))
      const codes = fails.map(f => f.code)
      assert.ok(codes.includes(SwarmpackNodeErrorCode.CLOCK_SKEW), JSON.stringify(fails))
      assert.ok(fails.some(f => f.code === SwarmpackNodeErrorCode.MIRROR_UNHEALTHY && String(f.details?.url).startsWith(dead.url)), JSON.stringify(fails))
      const clock = fails.find(f => f.code === SwarmpackNodeErrorCode.CLOCK_SKEW)
      assert.ok(Math.abs(Number(clock?.details?.skewMs) - 20 * 60_000) < 60_000, JSON.stringify(clock))
      const store = fails.find(f => f.check === 'store')
      assert.equal(store?.code, SwarmpackNodeErrorCode.BLOCK_CORRUPT, JSON.stringify(fails))
      assert.deepEqual((store?.details?.corrupt as string[]).map(c => CID.parse(c).multihash.toString()), [corrupted.multihash.toString()])
    } finally {
      await skewed.close()
    }
  })
})

describe('ops: schedules', () => {
  it('after stop() no scheduled job runs again', async () => {
    const w = await World.create()
    try {
      await w.publish('a', '1.0.0')
      await w.pub.publishIndex()
      const entries: LogEntry[] = []
      const node = await w.node('timers', { a: '^1.0.0' }, { onLog: e => entries.push(e) }, { updates: { policy: 'notify', intervalMs: 100 }, scrub: { intervalMs: 150 } })
      await node.apply()
      await waitFor(async () => (await node.status()).scrub.last !== undefined && (await node.status()).updates.lastCheck !== undefined, 'a scheduled scrub and update check', 60_000)
      await node.stop()
      const state = await readFile(join(node.dataDir, 'ops', 'state.json'), 'utf8')
      const logged = entries.length
      // ten intervals of the fastest schedule: with a timer left behind, a check or a scrub would run and log
      await new Promise(resolve => setTimeout(resolve, 1000))
      assert.equal(entries.length, logged, JSON.stringify(entries.slice(logged)))
      assert.equal(await readFile(join(node.dataDir, 'ops', 'state.json'), 'utf8'), state)
    } finally {
      await w.close()
    }
  })
})

describe('ops: a node that follows no indexer', () => {
  it('scrubs, reports status and runs doctor', async () => {
    const w = await World.create()
    try {
      const node = await createSwarmpack({ dataDir: join(w.dir, 'bare'), config: { sharing: 'off' } })
      try {
        const r = await node.scrub()
        assert.equal(r.ok, true)
        assert.deepEqual(r.indexes.follow, [])
        const s = await node.status()
        assert.deepEqual(s.indexers, [])
        assert.equal(s.generation, undefined)
        const d = await node.doctor()
        assert.equal(d.ok, true, JSON.stringify(d.findings))
      } finally {
        await node.stop()
      }
    } finally {
      await w.close()
    }
  })
})

describe('ops: cache policy and gc dry run', () => {
  let w: World
  before(async () => {
    w = await World.create()
    await w.publish('b', '1.0.0')
    await w.publish('a', '1.0.0', { b: '^1' }, seededBytes(256 * 1024, 21))
    await w.pub.publishIndex()
  })
  after(async () => { await w.close() })

  const newVersion = async (v: string, seed: number): Promise<void> => {
    await w.publish('a', v, { b: '^1' }, seededBytes(256 * 1024, seed))
    await w.pub.publishIndex()
  }

  it('gc({ dryRun }) reports what gc then removes, byte for byte, and changes nothing', async () => {
    const node = await w.node('gc', { a: '^1.0.0' })
    await node.apply()
    await newVersion('1.1.0', 22)
    await node.update()
    await newVersion('1.2.0', 23)
    await node.update()
    assert.equal((await node.current())?.number, 3)
    const state = await deploymentState(node.dataDir)
    const storeBefore = node.store.stats()
    const dry = await node.gc({ dryRun: true, keep: 1 })
    assert.equal(dry.dryRun, true)
    assert.deepEqual(dry.removedGenerations, [1, 2])
    assert.equal(dry.removedDirs.length, 2, 'a@1.0.0 and a@1.1.0 directories')
    assert.ok(dry.dirBytes >= 2 * 256 * 1024)
    assert.ok(dry.blocks.obsolete.bytes >= 2 * 256 * 1024, JSON.stringify(dry.blocks))
    assert.ok(dry.blocks.total.bytes >= dry.blocks.obsolete.bytes)
    assert.equal(dry.store.bytes, storeBefore.bytes)
    assert.equal(dry.store.after, storeBefore.bytes - dry.blocks.total.bytes)
    assert.equal(await deploymentState(node.dataDir), state, 'a dry run changes nothing')
    assert.deepEqual(node.store.stats(), storeBefore)

    const real = await node.gc({ keep: 1 })
    assert.deepEqual(real.removedGenerations, dry.removedGenerations)
    assert.deepEqual(real.removedDirs.sort(), dry.removedDirs.sort())
    assert.equal(real.freedBytes, dry.blocks.total.bytes)
    assert.equal(real.removedBlocks, dry.blocks.total.blocks)
  })

  it('over cache.maxSize, the policy drops generations beyond keep and evicts their versions first', async () => {
    const limit = 740 * 1024
    const passes: LogEntry[] = []
    const node = await w.node('policy', { a: '1.0.0' }, { onLog: e => { if (e.event === 'cache:policy') passes.push(e) } }, { cache: { maxSize: limit, checkIntervalMs: 100 }, generations: { keep: 2 } })
    await node.apply()
    const first = (await node.current())?.packages.a.path as string
    await node.install({ a: '1.1.0' })
    await node.install({ a: '1.2.0' })
    // three versions of a (256 KiB each, nothing shared) and b are over the limit, all pinned by generations
    const pass = await waitFor(() => passes.find(p => p.removedGenerations !== undefined && (p.removedGenerations as number[]).length > 0), 'a cache policy pass', 60_000)
    assert.deepEqual(pass.removedGenerations, [1])
    // blocks of a@1.0.0 go first, only as many as needed to fit; nothing else had to be evicted
    assert.ok((pass.obsolete as { bytes: number }).bytes > 0, `obsolete a@1.0.0 evicted first: ${JSON.stringify(pass)}`)
    assert.deepEqual(pass.lru, { blocks: 0, bytes: 0 })
    assert.equal(pass.stillOver, false)
    assert.deepEqual((await node.listGenerations()).map(g => g.number), [2, 3])
    assert.ok(node.store.stats().bytes <= limit, `${node.store.stats().bytes} <= ${limit}`)
    await assert.rejects(stat(first), 'the obsolete package directory is gone')
    const s = await node.status()
    assert.equal(s.cache.overLimit, false)
    assert.equal(s.cache.limit, limit)
    assert.deepEqual(s.packages.map(p => `${p.name}@${p.version}`), ['a@1.2.0', 'b@1.0.0'])
  })
})
