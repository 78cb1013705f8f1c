// The multi-source fetcher over real block stores and real mirror directories (FsProvider):
// per-block fallback, bans for bad bytes, resume, totals, the typed error when blocks are missing.
// Processes, HTTP mirrors and the swarm are covered by test/fetch-*.test.ts.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsBlockstore, FsProvider, exportMirror, listManifestCids, isSwarmpackError, mirrorBlockPath, pack, storeProvider, unpack, CoreErrorCode } from '@swarmpack/core'
import type { CID, Provider, ProviderGetOptions } from '@swarmpack/core'
import { createFetcher, isFetchIncomplete, ResolverErrorCode, type Fetcher, type FetchProgressEvents, type SourcePolicy } from '../src/index.js'

/** Counts the requests a provider receives (the fetcher must not ask a source it was told not to). */
function counted (provider: Provider): Provider & { requests: number } {
  const wrapped = {
    name: provider.name,
    requests: 0,
    async get (cid: CID, options?: ProviderGetOptions) { wrapped.requests++; return provider.get(cid, options) }
  }
  return wrapped
}

/**
 * A real provider answering late: every request waits `ms` (or until aborted, which is counted),
 * as a congested peer or a slow mirror would.
 */
function slowed (provider: Provider, ms: number, name: string): Provider & { aborted: number, requests: number } {
  const wrapped = {
    name,
    aborted: 0,
    requests: 0,
    async get (cid: CID, options: ProviderGetOptions = {}) {
      wrapped.requests++
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { options.signal?.removeEventListener('abort', onAbort); resolve() }, ms)
        const onAbort = (): void => { clearTimeout(timer); wrapped.aborted++; reject(new Error('aborted')) }
        options.signal?.addEventListener('abort', onAbort, { once: true })
      })
      return provider.get(cid, options)
    }
  }
  return wrapped
}

describe('createFetcher over directory mirrors', () => {
  let work: string
  let root: CID
  let blockCids: CID[]
  let fullMirror: string
  let totalSize: number

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'swarmpack-fetch-'))
    const src = join(work, 'src')
    await mkdir(join(src, 'lib'), { recursive: true })
    await writeFile(join(src, 'index.js'), 'export const x = 1\n')
    await writeFile(join(src, 'lib', 'data.bin'), randomBytes(3 * 1024 * 1024))
    await writeFile(join(src, 'lib', 'more.bin'), randomBytes(700 * 1024))
    const publisher = await FsBlockstore.open(join(work, 'publisher'))
    const packed = await pack(src, { name: 'fetch-test', version: '1.0.0' }, { blockstore: publisher })
    root = packed.root
    totalSize = packed.totalSize
    fullMirror = join(work, 'mirror-full')
    await exportMirror(publisher, [root], fullMirror)
    blockCids = await listManifestCids(root, storeProvider(publisher))
    assert.ok(blockCids.length > 10, 'the package spans many blocks')
    await publisher.close()
  })

  after(async () => { await rm(work, { recursive: true, force: true }) })

  /** A copy of the full mirror with some blocks removed or replaced. */
  async function partialMirror (name: string, edit: (cid: CID, path: string) => Promise<void>): Promise<string> {
    const dir = join(work, name)
    const store = await FsBlockstore.open(join(work, `${name}-store`))
    const source = new FsProvider(fullMirror)
    for (const cid of blockCids) await store.put(cid, await source.get(cid))
    await exportMirror(store, [root], dir)
    await store.close()
    for (const cid of blockCids) await edit(cid, join(dir, mirrorBlockPath(cid)))
    return dir
  }

  async function freshStore (name: string): Promise<FsBlockstore> {
    return FsBlockstore.open(join(work, name))
  }

  async function assertIntact (store: FsBlockstore, name: string): Promise<void> {
    const target = join(work, `${name}-out`)
    await unpack(root, storeProvider(store), target)
    assert.equal((await readFile(join(target, 'index.js'), 'utf8')), 'export const x = 1\n')
  }

  /** A "peer" and a "mirror" over the same full mirror directory, each counting its requests. */
  function peerAndMirror (store: FsBlockstore, policy: SourcePolicy, mirrorName: string): { peer: ReturnType<typeof counted>, mirror: ReturnType<typeof counted>, fetcher: Fetcher } {
    const peer = counted(new FsProvider(fullMirror))
    const mirror = Object.assign(counted(new FsProvider(fullMirror)), { name: mirrorName })
    const fetcher = createFetcher({ blockstore: store, sources: [{ provider: peer, kind: 'peer' }, { provider: mirror, kind: 'mirror' }], policy })
    return { peer, mirror, fetcher }
  }

  it('fetches a whole package from one source, with exact totals up front', async () => {
    const store = await freshStore('one')
    const { peer, mirror, fetcher } = peerAndMirror(store, 'peers-only', 'mirror-b')
    const events: FetchProgressEvents[] = []
    const result = await fetcher.fetchDag(root, { onProgress: (e) => events.push(e) })
    assert.equal(result.blocks.network, blockCids.length)
    assert.equal(result.blocks.local, 0)
    assert.equal(mirror.requests, 0, 'peers-only never asks a mirror')
    assert.equal(peer.requests, blockCids.length)
    assert.equal(events[0].type, 'swarmpack:fetch:start')
    const start = events[0].detail as { totalBlocks: number, totalBytes: number }
    assert.equal(start.totalBlocks, result.blocks.total)
    assert.equal(start.totalBytes, result.bytes.total)
    assert.ok(result.bytes.total > totalSize, 'manifest blocks are counted in the total')
    const blockEvents = events.filter(e => e.type === 'swarmpack:fetch:block')
    assert.equal(blockEvents.length, blockCids.length)
    assert.equal(events.at(-1)?.type, 'swarmpack:fetch:done')
    await assertIntact(store, 'one')
    await store.close()
  })

  it('falls back per block: blocks a peer lacks come from the mirror', async () => {
    let dropped = 0
    const half = await partialMirror('peer-half', async (cid, path) => {
      if (cid.code === 0x55 && dropped++ % 2 === 0) await unlink(path)
    })
    const store = await freshStore('half')
    const peer = counted(new FsProvider(half))
    const mirror = counted(new FsProvider(fullMirror))
    const fetcher = createFetcher({ blockstore: store, sources: [{ provider: mirror, kind: 'mirror' }, { provider: peer, kind: 'peer' }] })
    const result = await fetcher.fetchDag(root)
    assert.equal(result.blocks.network, blockCids.length)
    const byName = new Map(result.sources.map(s => [s.source, s.blocks]))
    assert.ok((byName.get(peer.name) ?? 0) > 0 && (byName.get(mirror.name) ?? 0) > 0, JSON.stringify(result.sources))
    assert.ok(result.fallbacks >= Math.floor(dropped / 2), `fallbacks ${result.fallbacks}`)
    assert.equal(result.banned.length, 0)
    await assertIntact(store, 'half')
    await store.close()
  })

  it('bans a source that sends bytes not matching the CID; the package still arrives intact', async () => {
    let corrupted = 0
    const bad = await partialMirror('peer-bad', async (cid, path) => {
      if (cid.code === 0x55 && corrupted++ === 1) await writeFile(path, randomBytes(1000))
    })
    const store = await freshStore('bad')
    const peer = new FsProvider(bad)
    const mirror = new FsProvider(fullMirror)
    const fetcher = createFetcher({ blockstore: store, sources: [{ provider: peer, kind: 'peer' }, { provider: mirror, kind: 'mirror' }] })
    const bans: unknown[] = []
    const result = await fetcher.fetchDag(root, { onProgress: (e) => { if (e.type === 'swarmpack:fetch:ban') bans.push(e.detail) } })
    assert.equal(result.banned.length, 1)
    assert.equal(result.banned[0].source, peer.name)
    assert.equal(bans.length, 1)
    assert.equal(result.blocks.network, blockCids.length)
    await assertIntact(store, 'bad')
    await store.close()
  })

  it('resumes: blocks already in the store are not fetched again', async () => {
    const store = await freshStore('resume')
    const source = new FsProvider(fullMirror)
    const have = blockCids.filter((_, i) => i % 3 === 0)
    for (const cid of have) await store.put(cid, await source.get(cid))
    const mirror = counted(new FsProvider(fullMirror))
    const fetcher = createFetcher({ blockstore: store, sources: [{ provider: mirror, kind: 'mirror' }] })
    let start: { totalBlocks?: number, totalBytes?: number } = {}
    let local = 0
    const result = await fetcher.fetchDag(root, {
      onProgress: (e) => {
        if (e.type === 'swarmpack:fetch:start') start = e.detail
        if (e.type === 'swarmpack:fetch:block' && e.detail.local) local += e.detail.bytes
      }
    })
    // local blocks are counted apart, and network + local add up to the total announced up front
    assert.equal(start.totalBlocks, blockCids.length)
    assert.equal(start.totalBytes, result.bytes.total)
    assert.equal(result.bytes.local, local)
    assert.ok(local > 0)
    assert.equal(result.blocks.local, have.length)
    assert.equal(result.blocks.network, blockCids.length - have.length)
    assert.equal(mirror.requests, blockCids.length - have.length)
    await assertIntact(store, 'resume')
    await store.close()
  })

  it('fails fast with ERR_FETCH_INCOMPLETE naming the missing blocks and the sources tried', async () => {
    const missingCids: string[] = []
    const holes = await partialMirror('holes', async (cid, path) => {
      if (cid.code === 0x55 && missingCids.length < 3) { missingCids.push(cid.toString()); await unlink(path) }
    })
    const store = await freshStore('holes')
    const fetcher = createFetcher({ blockstore: store, sources: [{ provider: new FsProvider(holes), kind: 'mirror' }] })
    const started = Date.now()
    await assert.rejects(fetcher.fetchDag(root), (err: unknown) => {
      assert.ok(isFetchIncomplete(err), String(err))
      assert.equal(err.missingCount, 3)
      assert.deepEqual([...err.missing].sort(), [...missingCids].sort())
      assert.deepEqual(err.tried, [`fs:${holes}`])
      return true
    })
    assert.ok(Date.now() - started < 10_000)
    // everything else was stored as it arrived
    const entries = await readdir(join(work, 'holes'))
    assert.ok(entries.length > 0)
    await store.close()
  })

  it('with no sources at all fails at once with the typed error', async () => {
    const store = await freshStore('none')
    const fetcher = createFetcher({ blockstore: store, sources: [] })
    const started = Date.now()
    await assert.rejects(fetcher.fetchDag(root), (err: unknown) => isFetchIncomplete(err) && err.missingCount === 1 && err.details.cause === 'no-sources')
    assert.ok(Date.now() - started < 2000)
    await store.close()
  })

  it('mirrors-only and peers-only never touch the other kind; getBlock and fetchBlocks', async () => {
    const store = await freshStore('kinds')
    const { peer, mirror, fetcher } = peerAndMirror(store, 'mirrors-only', 'mirror-2')
    const bytes = await fetcher.getBlock(root)
    assert.ok(bytes.byteLength > 0)
    assert.equal(peer.requests, 0)
    const some = blockCids.slice(0, 5)
    const r = await fetcher.fetchBlocks(some, { policy: 'peers-only' })
    assert.equal(r.blocks.total, 5)
    assert.equal(mirror.requests, 1)
    await store.close()
  })

  it('race asks a peer and a mirror for every block; the first verified answer wins', async () => {
    const store = await freshStore('race')
    const { peer, mirror, fetcher } = peerAndMirror(store, 'race', 'mirror-race')
    const result = await fetcher.fetchDag(root)
    assert.equal(result.blocks.network, blockCids.length)
    assert.ok(result.hedges > 0, 'second requests went out at once')
    assert.ok(peer.requests > 0 && mirror.requests > 0)
    assert.ok(peer.requests + mirror.requests > blockCids.length, 'blocks were asked of both')
    await assertIntact(store, 'race')
    await store.close()
  })

  it('an abort stops the fetch with ERR_ABORTED', async () => {
    const store = await freshStore('abort')
    const controller = new AbortController()
    const fetcher = createFetcher({ blockstore: store, sources: [{ provider: new FsProvider(fullMirror), kind: 'mirror' }] })
    let seen = 0
    await assert.rejects(fetcher.fetchDag(root, {
      signal: controller.signal,
      onProgress: (e) => { if (e.type === 'swarmpack:fetch:block' && ++seen === 3) controller.abort() }
    }), (err: any) => isSwarmpackError(err, CoreErrorCode.ABORTED))
    await store.close()
  })

  it('hedges blocks a slow source sits on: the other source answers, the slow request is cancelled', async () => {
    const store = await freshStore('hedge')
    const slowPeer = slowed(new FsProvider(fullMirror), 20_000, 'slow-peer')
    // a mirror at 30 ms a block, 4 at a time: the fetch lasts long enough for the silent peer to be demoted
    const mirror = slowed(new FsProvider(fullMirror), 30, 'mirror')
    const fetcher = createFetcher({ blockstore: store, sources: [{ provider: slowPeer, kind: 'peer' }, { provider: mirror, kind: 'mirror', concurrency: 4 }], hedgeAfterMs: 100 })
    const switches: unknown[] = []
    const started = Date.now()
    const result = await fetcher.fetchDag(root, { onProgress: (e) => { if (e.type === 'swarmpack:fetch:source-switch') switches.push(e.detail) } })
    assert.ok(Date.now() - started < 20_000, `no block waited for the slow source (${Date.now() - started} ms)`)
    assert.ok(result.hedges > 0 && result.hedgeWins > 0, `hedges ${result.hedges}, won ${result.hedgeWins}`)
    assert.equal(result.sources.length, 1)
    assert.equal(result.sources[0].source, mirror.name)
    assert.equal(slowPeer.aborted, slowPeer.requests, 'every request to the slow source was cancelled')
    assert.ok(switches.some(s => (s as { state: string }).state === 'demoted'), 'the slow source was demoted')
    await assertIntact(store, 'hedge')
    await store.close()
  })

  it('a source that never answers: the stall deadline fails the fetch, naming the outstanding blocks', async () => {
    const store = await freshStore('stall')
    const silent = slowed(new FsProvider(fullMirror), 3_600_000, 'silent')
    const fetcher = createFetcher({ blockstore: store, sources: [{ provider: silent, kind: 'peer' }], stallTimeoutMs: 500, blockTimeoutMs: 60_000 })
    const started = Date.now()
    await assert.rejects(fetcher.fetchDag(root), (err: unknown) => {
      assert.ok(isFetchIncomplete(err), String(err))
      assert.equal(err.details.cause, 'stalled')
      assert.deepEqual(err.missing, [root.toString()])
      assert.deepEqual(err.tried, ['silent'])
      return true
    })
    assert.ok(Date.now() - started < 5_000)
    assert.equal(silent.aborted, silent.requests, 'nothing is left running')
    await store.close()
  })

  it('refuses unknown policies with a typed error', () => {
    assert.throws(() => createFetcher({ blockstore: {} as any, sources: [] }), (err: any) => isSwarmpackError(err, ResolverErrorCode.FETCH_CONFIG))
  })
})
