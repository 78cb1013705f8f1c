/**
 * A provider killed (SIGKILL) in the middle of a transfer: the fetcher's session moves its
 * outstanding wants to the other providers and the package still arrives intact.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hashTree, seedDataDir, startNode, stopAll, writePackageDir, type ChildPeer } from './helpers/swarm.js'

const SIZE = 24 * 1024 * 1024

describe('a provider killed mid-transfer', { timeout: 300_000 }, () => {
  let dir: string
  let root: string
  let expected: Record<string, string>
  const peers: ChildPeer[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-kill-'))
    await writePackageDir(join(dir, 'content'), SIZE, 'kill')
    expected = await hashTree(join(dir, 'content'))
    for (const s of ['seed-0', 'seed-1', 'seed-2']) root = (await seedDataDir(join(dir, s), join(dir, 'content'))).root.toString()
  })

  after(async () => {
    await stopAll(peers)
    await rm(dir, { recursive: true, force: true })
  })

  it('the others finish the package', async () => {
    const common = ['--network', 'loopback', '--listen', '/ip4/127.0.0.1/tcp/0']
    const hub = await startNode('hub', [...common, '--data-dir', join(dir, 'hub')])
    peers.push(hub)
    const boot = ['--bootstrap', hub.multiaddrs[0]]
    const started = await Promise.all([
      ...[0, 1, 2].map(async i => startNode(`seed-${i}`, [...common, ...boot, '--data-dir', join(dir, `seed-${i}`)])),
      startNode('fetcher', [...common, ...boot, '--data-dir', join(dir, 'fetcher'), '--progress-interval', '0'])
    ])
    peers.push(...started)
    const seeds = started.slice(0, 3)
    const fetcher = started[3]
    for (let i = 0; ; i++) {
      const r = await fetcher.command('status', 'status')
      if (r.routingTable >= 4) break
      assert.ok(i < 150, 'routing table did not fill')
      await new Promise(resolve => setTimeout(resolve, 200))
    }

    // kill the first seed that delivers a block, as soon as it has
    const seedIds = new Map(seeds.map(s => [s.peerId, s]))
    const firstBlock = fetcher.next(e => e.event === 'progress' && seedIds.has(e.source as string), 60_000, 'a block from a seed')
    fetcher.send(`fetch ${root} ${join(dir, 'out')}`)
    const first = await firstBlock
    const victim = seedIds.get(first.source as string)!
    victim.kill('SIGKILL')
    const blocksAtKill = first.blocks as number
    await victim.exited

    const done = await fetcher.waitFor(e => e.event === 'unpacked' || (e.event === 'error' && String(e.command).startsWith('fetch')), 90_000, 'the fetch to end')
    assert.equal(done.event, 'unpacked', `fetch failed: ${String(done.message)}`)
    assert.deepEqual(await hashTree(join(dir, 'out')), expected)
    const fetched = fetcher.events.find(e => e.event === 'fetched')!
    assert.ok(blocksAtKill < (fetched.blocks as number) / 2, `the kill landed mid-transfer (${blocksAtKill} of ${String(fetched.blocks)} blocks)`)
    const sources = fetched.sources as Array<{ peer: string, bytes: number }>
    const fromVictim = sources.find(s => s.peer === victim.peerId)?.bytes ?? 0
    const fromOthers = sources.filter(s => s.peer !== victim.peerId).reduce((n, s) => n + s.bytes, 0)
    assert.ok(fromOthers > fromVictim, 'the surviving seeds served most of it')
    assert.ok(sources.filter(s => s.peer !== victim.peerId && s.bytes > 0).length >= 1)
  })
})
