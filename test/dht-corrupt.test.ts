/**
 * A peer serving corrupted blocks: the fetcher detects every bad block against its CID, bans
 * the peer, and still assembles the package intact from the two honest seeds.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FAULTY_PEER_SCRIPT, hashTree, seedDataDir, startNode, stopAll, waitForProviders, writePackageDir, type ChildPeer } from './helpers/swarm.js'

describe('a peer serving corrupted blocks', { timeout: 300_000 }, () => {
  let dir: string
  let root: string
  let expected: Record<string, string>
  const peers: ChildPeer[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-corrupt-'))
    await writePackageDir(join(dir, 'content'), 6 * 1024 * 1024, 'corrupt')
    expected = await hashTree(join(dir, 'content'))
    for (const s of ['honest-0', 'honest-1', 'corrupt']) root = (await seedDataDir(join(dir, s), join(dir, 'content'))).root.toString()
  })

  after(async () => {
    await stopAll(peers)
    await rm(dir, { recursive: true, force: true })
  })

  it('is banned and the package arrives intact from the others', async () => {
    const common = ['--network', 'loopback', '--listen', '/ip4/127.0.0.1/tcp/0']
    const hub = await startNode('hub', [...common, '--data-dir', join(dir, 'hub')])
    peers.push(hub)
    const boot = ['--bootstrap', hub.multiaddrs[0]]
    const [corrupt, ...rest] = await Promise.all([
      startNode('corrupt', [...boot, '--data-dir', join(dir, 'corrupt'), '--corrupt'], { script: FAULTY_PEER_SCRIPT }),
      startNode('honest-0', [...common, ...boot, '--data-dir', join(dir, 'honest-0')]),
      startNode('honest-1', [...common, ...boot, '--data-dir', join(dir, 'honest-1')]),
      startNode('fetcher', [...common, ...boot, '--data-dir', join(dir, 'fetcher')])
    ])
    peers.push(corrupt, ...rest)
    const fetcher = rest[2]
    const honest = new Set([rest[0].peerId, rest[1].peerId])

    // The corrupt peer must be asked. Left to the fetch's own lookup, it is not on a busy machine:
    // the lookup settles soon after the first providers answer, and the honest peers can deliver
    // everything before it reaches the corrupt one (or before that one's announcement is stored).
    // So wait until the fetcher's DHT lists all three providers, then give them to the fetch.
    const wanted = [corrupt.peerId, ...honest]
    await waitForProviders(fetcher, root, wanted)
    await fetcher.command(`fetch ${root} ${join(dir, 'out')} ${wanted.map(p => `--peer ${p}`).join(' ')}`, 'unpacked', 90_000)
    assert.deepEqual(await hashTree(join(dir, 'out')), expected)

    const fetched = fetcher.events.find(e => e.event === 'fetched')!
    const sources = (fetched.sources as Array<{ peer: string, bytes: number }>)
    assert.ok(sources.every(s => honest.has(s.peer)), 'every stored block came from an honest peer')
    const status = await fetcher.command('status', 'status')
    const banned = (status.bitswap.banned as Array<{ peer: string }>).map(b => b.peer)
    assert.ok(banned.includes(corrupt.peerId), 'the corrupt peer is banned')
    assert.ok(!banned.some(p => honest.has(p)), 'no honest peer is banned')
  })
})
