/**
 * A swarm of ten separate processes (test/helpers/swarm-peer.ts): a bootstrap peer, two seeds holding a
 * multi-megabyte package, six peers that discover the seeds through the DHT and fetch it, then
 * (F5) a last peer that gets it from those six alone after the seeds are gone.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hashTree, seedDataDir, startNode, stopAll, waitForProviders, writePackageDir, type ChildPeer } from './helpers/swarm.js'

const SIZE = 8 * 1024 * 1024
const FETCHERS = 6

describe('DHT swarm of 10 processes', { timeout: 300_000 }, () => {
  let dir: string
  let root: string
  let expected: Record<string, string>
  const peers: ChildPeer[] = []
  let hub: ChildPeer
  const seeds: ChildPeer[] = []
  const fetchers: ChildPeer[] = []
  let late: ChildPeer

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-swarm-'))
    await writePackageDir(join(dir, 'content'), SIZE, 'swarm')
    expected = await hashTree(join(dir, 'content'))
    for (const s of ['seed-0', 'seed-1']) root = (await seedDataDir(join(dir, s), join(dir, 'content'))).root.toString()
    const common = ['--network', 'loopback', '--listen', '/ip4/127.0.0.1/tcp/0']
    hub = await startNode('hub', [...common, '--data-dir', join(dir, 'hub')])
    peers.push(hub)
    const boot = ['--bootstrap', hub.multiaddrs[0]]
    const started = await Promise.all([
      ...[0, 1].map(async i => startNode(`seed-${i}`, [...common, ...boot, '--data-dir', join(dir, `seed-${i}`)])),
      ...Array.from({ length: FETCHERS }, async (_, i) => startNode(`fetcher-${i}`, [...common, ...boot, '--data-dir', join(dir, `fetcher-${i}`)])),
      startNode('late', [...common, ...boot, '--data-dir', join(dir, 'late')])
    ])
    peers.push(...started)
    seeds.push(...started.slice(0, 2))
    fetchers.push(...started.slice(2, 2 + FETCHERS))
    late = started[2 + FETCHERS]
  })

  after(async () => {
    await stopAll(peers)
    await rm(dir, { recursive: true, force: true })
  })

  it('six peers discover the seeds through the DHT and fetch the package intact', async () => {
    // each fetcher's DHT must list a seed first: a lookup made before the seeds' announcements
    // are stored finds nobody, and its retries are over in seconds on a busy machine
    await Promise.all(fetchers.map(async f => waitForProviders(f, root, 1)))
    const results = await Promise.all(fetchers.map(async (f, i) => f.command(`fetch ${root} ${join(dir, `out-${i}`)}`, 'unpacked', 90_000)))
    assert.equal(results.length, FETCHERS)
    for (const [i, f] of fetchers.entries()) {
      const fetched = f.events.find(e => e.event === 'fetched' && e.root === root)
      assert.ok(fetched, `fetcher-${i} reported the fetch`)
      assert.ok(fetched.bytes >= SIZE, 'the whole package came in')
      const served = (fetched.sources as Array<{ peer: string, bytes: number }>)
      assert.ok(served.length >= 1 && served.every(s => s.peer !== f.peerId), 'sources are other peers')
      const providers = f.events.filter(e => e.event === 'providers').flatMap(e => e.peers as string[])
      assert.ok(providers.length >= 1, 'providers were found through the DHT')
      assert.deepEqual(await hashTree(join(dir, `out-${i}`)), expected)
    }
    // every fetcher announced the package after fetching it (contributing back, F5)
    for (const f of fetchers) {
      const s = await f.command('status', 'status')
      assert.ok((s.announced as string[]).includes(root))
    }
  })

  it('after the seeds leave, the last peer gets the package from the peers that fetched it', async () => {
    const seedIds = new Set(seeds.map(s => s.peerId))
    await stopAll(seeds)
    // the fetchers announce in the background after their fetch: wait until the late peer's DHT
    // lists one of them, or its lookup can find only the seeds that just left
    const fetcherIds = new Set(fetchers.map(f => f.peerId))
    const found = await waitForProviders(late, root, found => found.some(p => fetcherIds.has(p)))
    const ask = found.filter(p => fetcherIds.has(p)).map(p => `--peer ${p}`).join(' ')
    await late.command(`fetch ${root} ${join(dir, 'out-late')} ${ask}`, 'unpacked', 90_000)
    const fetched = late.events.find(e => e.event === 'fetched')!
    const sources = (fetched.sources as Array<{ peer: string }>).map(s => s.peer)
    assert.ok(sources.length >= 1)
    assert.ok(sources.every(p => !seedIds.has(p)), 'served only by peers that contributed back')
    assert.ok(sources.every(p => fetchers.some(f => f.peerId === p)))
    assert.deepEqual(await hashTree(join(dir, 'out-late')), expected)
  })
})
