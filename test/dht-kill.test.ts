/**
 * A provider killed (SIGKILL) in the middle of a transfer: the fetcher's session moves its
 * outstanding wants to the other providers and the package still arrives intact. The victim
 * kills itself after serving a set number of blocks, so the kill lands mid-transfer however
 * slow the machine is (a kill sent by the test on a progress line could land after the end).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FAULTY_PEER_SCRIPT, hashTree, seedDataDir, startNode, stopAll, waitForProviders, writePackageDir, type ChildPeer } from './helpers/swarm.js'

const SIZE = 24 * 1024 * 1024
/** Blocks the victim serves before it dies (the package has about 1,200). */
const DIE_AFTER = 20

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
      startNode('seed-0', [...common, ...boot, '--data-dir', join(dir, 'seed-0'), '--die-after', String(DIE_AFTER)], { script: FAULTY_PEER_SCRIPT }),
      ...[1, 2].map(async i => startNode(`seed-${i}`, [...common, ...boot, '--data-dir', join(dir, `seed-${i}`)])),
      startNode('fetcher', [...common, ...boot, '--data-dir', join(dir, 'fetcher')])
    ])
    peers.push(...started)
    const [victim, ...survivors] = started.slice(0, 3)
    const fetcher = started[3]

    // every seed is asked from the start, the victim included (a fetch's own lookup may stop
    // before it finds all three)
    const seedIds = started.slice(0, 3).map(s => s.peerId)
    await waitForProviders(fetcher, root, seedIds)
    fetcher.send(`fetch ${root} ${join(dir, 'out')} ${seedIds.map(p => `--peer ${p}`).join(' ')}`)
    const dying = await victim.waitFor(e => e.event === 'dying', 90_000, 'the victim to die mid-transfer')
    assert.equal(dying.served, DIE_AFTER)
    assert.equal(await victim.exited, null, 'the victim was killed')

    const done = await fetcher.waitFor(e => e.event === 'unpacked' || (e.event === 'error' && String(e.command).startsWith('fetch')), 90_000, 'the fetch to end')
    assert.equal(done.event, 'unpacked', `fetch failed: ${String(done.message)}`)
    assert.deepEqual(await hashTree(join(dir, 'out')), expected)
    const fetched = fetcher.events.find(e => e.event === 'fetched')!
    const sources = fetched.sources as Array<{ peer: string, blocks: number, bytes: number }>
    const fromVictim = sources.find(s => s.peer === victim.peerId)?.blocks ?? 0
    assert.ok(fromVictim <= DIE_AFTER, `the victim delivered at most the ${DIE_AFTER} blocks it served (${fromVictim})`)
    assert.ok((fetched.blocks as number) > 10 * DIE_AFTER, 'the kill landed early in the transfer')
    const survivorIds = new Set(survivors.map(s => s.peerId))
    assert.ok(sources.some(s => survivorIds.has(s.peer) && s.blocks > 0), 'the surviving seeds served the rest')
  })
})
