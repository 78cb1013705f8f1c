/**
 * R1: a downloader killed mid-transfer (SIGKILL, no clean shutdown) resumes after a restart on
 * the same data directory. Blocks were persisted as they arrived, so the second run fetches only
 * what is missing, and the package still unpacks byte-for-byte. The seed holds back everything
 * after the first third of the blocks until the test releases it, so the kill lands mid-transfer
 * however slow the machine is.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FAULTY_PEER_SCRIPT, hashTree, seedDataDir, startNode, stopAll, writePackageDir, type ChildPeer } from './helpers/swarm.js'

const SIZE = 24 * 1024 * 1024

/** Names of files under `dir`, recursively (to catch leftovers of an interrupted write). */
async function listFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter(e => e.isFile()).map(e => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))
}

describe('a downloader restarted after a crash', { timeout: 300_000 }, () => {
  let dir: string
  let root: string
  let totalBlocks: number
  let expected: Record<string, string>
  const peers: ChildPeer[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-resume-'))
    await writePackageDir(join(dir, 'content'), SIZE, 'resume')
    expected = await hashTree(join(dir, 'content'))
    const seeded = await seedDataDir(join(dir, 'seed'), join(dir, 'content'))
    root = seeded.root.toString()
    totalBlocks = seeded.blocks
  })

  after(async () => {
    await stopAll(peers)
    await rm(dir, { recursive: true, force: true })
  })

  it('fetches only the blocks it did not have, and the package is intact', async () => {
    const common = ['--network', 'loopback', '--listen', '/ip4/127.0.0.1/tcp/0']
    const third = Math.floor(totalBlocks / 3)
    const seed = await startNode('seed', [...common, '--data-dir', join(dir, 'seed'), '--stall-after', String(third)], { script: FAULTY_PEER_SCRIPT })
    peers.push(seed)
    const fetcherArgs = [...common, '--bootstrap', seed.multiaddrs[0], '--data-dir', join(dir, 'fetcher'), '--progress-interval', '0']

    // first run: killed once what the seed served before stalling is in. The seed's last message
    // may be held with the stalled block (one turn's message, at most 2 MiB), the rest arrives.
    const first = await startNode('fetcher-1', fetcherArgs)
    peers.push(first)
    first.send(`fetch ${root}`)
    const stalled = await seed.waitFor(e => e.event === 'stalled', 120_000, 'the seed to stall')
    const atKill = await first.waitFor(e => e.event === 'progress' && (e.bytes as number) >= (stalled.bytes as number) - 2 * 1024 * 1024, 60_000, 'the blocks served before the stall')
    first.kill('SIGKILL')
    await first.exited
    assert.equal(first.events.some(e => e.event === 'fetched'), false, 'the kill landed before the fetch completed')
    seed.send('release')

    // nothing half-written under a valid block name: every file is a block or a store file
    const leftovers = (await listFiles(join(dir, 'fetcher', 'store'))).filter(f => /\.tmp|tmp-|\.partial/.test(f))
    assert.ok(leftovers.length <= 1, `at most the one interrupted temp file is left: ${leftovers.join(', ')}`)

    // second run on the same data directory
    const second = await startNode('fetcher-2', fetcherArgs)
    peers.push(second)
    const done = second.next(e => e.event === 'unpacked' || (e.event === 'error' && String(e.command).startsWith('fetch')), 120_000, 'the resumed fetch to end')
    second.send(`fetch ${root} ${join(dir, 'out')}`)
    const end = await done
    assert.equal(end.event, 'unpacked', `resumed fetch failed: ${String(end.message)}`)
    assert.deepEqual(await hashTree(join(dir, 'out')), expected)

    const fetched = second.events.find(e => e.event === 'fetched')!
    const local = fetched.localBlocks as number
    const fromNetwork = (fetched.sources as Array<{ bytes: number }>).reduce((n, s) => n + s.bytes, 0)
    // the store may have lost the block being written at the kill, never more than the window in flight
    assert.ok(local >= (atKill.blocks as number) * 0.9, `kept ${local} of the ${String(atKill.blocks)} blocks fetched before the crash`)
    assert.ok(fromNetwork < SIZE * 0.8, `second run fetched ${fromNetwork} bytes over the network, not the whole ${SIZE}`)
  })
})
