/**
 * The node in a real swarm of processes with a real nginx mirror: a seed node installs from the
 * mirror and serves; four more install from the swarm alone (peers-only); when every peer is gone
 * the mirror serves; a restarted node serves what it installed.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { NGINX, startNginx, type TestNginx } from '../packages/http-provider/test/helpers/nginx.js'
import { TestPublisher, seededBytes } from '../packages/swarmpack/test/helpers/publisher.js'
import { ChildPeer, ROOT, stopAll, type NodeEvent } from './helpers/swarm.js'

const SCRIPT = join(ROOT, 'test/fixtures/swarmpack-node.ts')
const skip = NGINX === undefined ? 'nginx is not installed (apt-get install -y nginx-light)' : false

interface Started { child: ChildPeer, dataDir: string }

describe('node: swarm of processes and an nginx mirror', { skip }, () => {
  let dir: string
  let pub: TestPublisher
  let nginx: TestNginx
  const children: ChildPeer[] = []

  const configFile = async (name: string, extra: Record<string, unknown>): Promise<string> => {
    const file = join(dir, `${name}.json`)
    await writeFile(file, JSON.stringify({
      ...pub.trustConfig(),
      modules: { a: '^1.0.0' },
      network: { mode: 'loopback' },
      ...extra
    }))
    return file
  }

  const start = async (name: string, extra: Record<string, unknown>, dataDir = join(dir, name)): Promise<Started> => {
    const child = new ChildPeer(name, SCRIPT, [dataDir, await configFile(name, extra), 'serve'])
    children.push(child)
    await child.ready()
    return { child, dataDir }
  }

  const apply = async (p: Started): Promise<{ applied: NodeEvent, fetched: NodeEvent[] }> => {
    const from = p.child.events.length
    const applied = await p.child.command('apply', 'applied', 180_000)
    return { applied, fetched: p.child.events.slice(from).filter(e => e.event === 'fetched') }
  }

  const headsOnly = (): Record<string, unknown> => ({ indexers: [{ ...pub.trustConfig().indexers[0], heads: { directories: [pub.mirrorDir] } }] })

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-node-swarm-'))
    pub = await TestPublisher.create(join(dir, 'publisher'))
    const files = (v: string, seed: number): Record<string, string | Uint8Array> => ({ 'index.js': `export const v = '${v}'\n`, 'data.bin': seededBytes(1536 * 1024, seed) })
    await pub.publish({ name: 'b', version: '1.0.0', files: files('b1', 1), entry: 'index.js' })
    await pub.publish({ name: 'a', version: '1.0.0', files: files('a1', 2), dependencies: { b: '^1' }, entry: 'index.js' })
    await pub.publishIndex()
    nginx = await startNginx(pub.mirrorDir) as TestNginx
  })
  after(async () => {
    await stopAll(children)
    await nginx?.close()
    await pub?.close()
    await rm(dir, { recursive: true, force: true })
  })

  let seed: Started
  const peers: Started[] = []

  it('a seed installs from nginx; four peers install from the swarm alone', async () => {
    seed = await start('seed', { sources: { mirrors: [{ url: nginx.url }], policy: 'mirrors-only' } })
    const s = await apply(seed)
    assert.equal(s.applied.generation, 1)
    assert.ok(s.applied.announced > 0, 'the seed announced what it installed')
    assert.ok(s.fetched.every(f => f.sources.every((x: { kind: string }) => x.kind === 'mirror')))
    const boot = seed.child.multiaddrs
    for (let i = 1; i <= 4; i++) peers.push(await start(`peer-${i}`, { ...headsOnly(), sources: { bootstrap: boot, policy: 'peers-only' } }))
    const results = await Promise.all(peers.map(apply))
    for (const r of results) {
      assert.equal(r.applied.generation, 1)
      const network = r.fetched.reduce((n, f) => n + f.bytes.network, 0)
      assert.ok(network > 3 * 1024 * 1024, `fetched the packages from peers (${network} bytes)`)
      assert.ok(r.fetched.every(f => f.sources.every((x: { kind: string }) => x.kind === 'peer')), JSON.stringify(r.fetched.map(f => f.sources)))
      assert.equal(await readFile(join(r.applied.packages.a.path, 'index.js'), 'utf8'), "export const v = 'a1'\n")
    }
  })

  it('a restarted node serves what it installed', async () => {
    const p1 = peers[0]
    assert.equal(await p1.child.stop(), 0)
    const again = await start('peer-1-again', { ...headsOnly(), sources: { policy: 'peers-only' } }, p1.dataDir)
    const ready = again.child.events.find(e => e.event === 'ready')
    assert.equal(ready?.generation, 1, 'the installed generation is still current after the restart')
    // everyone else leaves: only the restarted node can serve
    await stopAll([seed.child, ...peers.slice(1).map(p => p.child)])
    await again.child.command('status', 'status')
    const fresh = await start('fresh', { ...headsOnly(), sources: { bootstrap: again.child.multiaddrs, policy: 'peers-only' } })
    const r = await apply(fresh)
    assert.equal(r.applied.generation, 1)
    const origins = new Set(r.fetched.flatMap(f => f.sources.map((x: { origin?: string, source: string }) => x.origin ?? x.source)))
    assert.ok(r.fetched.reduce((n, f) => n + f.bytes.network, 0) > 3 * 1024 * 1024)
    assert.ok([...origins].every(o => o === again.child.peerId || o === 'dht'), `served by the restarted node: ${[...origins].join(', ')}`)
    await stopAll([again.child, fresh.child])
  })

  it('with every peer gone, the mirror serves', async () => {
    const lonely = await start('lonely', { sources: { bootstrap: seed.child.multiaddrs, mirrors: [{ url: nginx.url }], policy: 'peers-first', hedgeAfterMs: 200 } })
    const r = await apply(lonely)
    assert.equal(r.applied.generation, 1)
    const kinds = new Set(r.fetched.flatMap(f => f.sources.filter((x: { bytes: number }) => x.bytes > 0).map((x: { kind: string }) => x.kind)))
    assert.deepEqual([...kinds], ['mirror'])
    await stopAll([lonely.child])
  })
})
