/**
 * "Never hang" (issue #9): `SwarmNode.fetch` called without an AbortSignal must end with a typed
 * error within a bound when nobody can deliver, and must not fail a slow peer that keeps
 * delivering. Real libp2p peers on loopback with a DHT and real stores; the misbehaving ones wrap
 * their store's `get` (as test/helpers/faulty-peer.ts does): one holds every block it is asked for,
 * one serves a block at a time with a pause between them.
 */
import '@swarmpack/core/polyfill'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { FsBlockstore, blockLinks, isSwarmpackError, pack, type CID } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer, findProviders, type SharingBlockstore, type SwarmNode, type SwarmpackPeer } from '../src/index.js'
import { waitUntil } from './bitswap-helpers.js'

/** The fetcher's bounds, short so the test is quick; the defaults are tested by their use elsewhere. */
const STALL_TIMEOUT = 3000
const FIND_TIMEOUT = 5000
const RETRIES = 1
/** What a fetch may take at most here: each attempt is bounded by the stall time or the lookup, plus the 1 s backoff, plus slack for a loaded machine. */
const BOUND = (RETRIES + 1) * (Math.max(STALL_TIMEOUT, FIND_TIMEOUT) + 2000) + 1000 + 10_000

type Behaviour = 'stall' | 'slow'

/** A store that holds (`stall`) or paces (`slow`, one block per 20 ms: a 64-block message takes over a second, the package several stall times) the blocks it serves. */
function misbehave (store: FsBlockstore, behaviour: Behaviour, release: Promise<void>): SharingBlockstore {
  let gate = Promise.resolve()
  return {
    has: async (cid: CID) => store.has(cid),
    put: async (cid: CID, bytes: Uint8Array) => store.put(cid, bytes),
    pins: () => store.pins(),
    get: async function * (cid: CID) {
      if (behaviour === 'stall') await release
      else {
        const turn = gate.then(async () => delay(20))
        gate = turn
        await turn
      }
      yield await store.getBytes(cid)
    }
  } as unknown as SharingBlockstore
}

describe('SwarmNode.fetch without a signal ends within a bound', { timeout: 600_000 }, () => {
  let dir: string
  const peers: SwarmpackPeer[] = []
  const stores: FsBlockstore[] = []
  const nodes: Record<string, SwarmNode> = {}
  let released: () => void = () => {}
  const release = new Promise<void>(resolve => { released = resolve })
  const roots: Record<string, CID> = {}

  const packInto = async (name: string, bytes: number, keep?: (store: FsBlockstore, root: CID) => Promise<void>): Promise<{ store: FsBlockstore, root: CID }> => {
    const content = join(dir, `content-${name}`)
    await mkdir(content, { recursive: true })
    await writeFile(join(content, 'lib.bin'), randomBytes(bytes))
    const store = await FsBlockstore.open(join(dir, name), { fsync: false })
    stores.push(store)
    const packed = await pack(content, { name, version: '1.0.0' }, { blockstore: store })
    await keep?.(store, packed.root)
    await store.pin(`${name}@1.0.0`, packed.root)
    return { store, root: packed.root }
  }

  /** Every CID the root reaches (dag-cbor links, level by level). */
  const blocksOf = async (store: FsBlockstore, root: CID): Promise<CID[]> => {
    const out: CID[] = []
    for (let level = [root]; level.length > 0;) {
      out.push(...level)
      const next: CID[] = []
      for (const cid of level) next.push(...blockLinks(cid, await store.getBytes(cid)))
      level = next
    }
    return out
  }

  const addNode = async (name: string, blockstore: SharingBlockstore, extra: Parameters<typeof createSwarmNode>[0] extends infer T ? Partial<T> : never = {}): Promise<SwarmNode> => {
    const peer = await createSwarmpackPeer({ network: 'loopback', bootstrap: peers.length > 0 ? [peers[0].multiaddrs()[0].toString()] : [] })
    peers.push(peer)
    nodes[name] = await createSwarmNode({ peer, blockstore, ...extra })
    return nodes[name]
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-bounds-'))
    const hubStore = await FsBlockstore.open(join(dir, 'hub'), { fsync: false })
    stores.push(hubStore)
    await addNode('hub', hubStore)
    const gone = await packInto('gone', 300_000)
    const stall = await packInto('stall', 300_000)
    const slow = await packInto('slow', 6_000_000)
    roots.gone = gone.root
    roots.stall = stall.root
    roots.slow = slow.root
    // a provider that holds the root but lost the rest (answers DontHave for every other block)
    const partial = await packInto('partial', 1_000_000, async (store, root) => {
      for (const cid of await blocksOf(store, root)) if (!cid.equals(root)) await store.delete(cid)
    })
    roots.partial = partial.root
    await addNode('gone', gone.store)
    await addNode('stall', misbehave(stall.store, 'stall', release))
    await addNode('slow', misbehave(slow.store, 'slow', release))
    await addNode('partial', partial.store)
    const fetcherStore = await FsBlockstore.open(join(dir, 'fetcher'), { fsync: false })
    stores.push(fetcherStore)
    await addNode('fetcher', fetcherStore, { mode: 'consume', findTimeout: FIND_TIMEOUT, session: { stallTimeout: STALL_TIMEOUT } })
    await Promise.all(peers.map(async p => p.waitForRoutingTable(3, { timeout: 60_000, refreshEvery: 2000 })))
    // the fetcher's DHT lists each provider before the tests start
    const fetcher = nodes.fetcher.peer
    for (const name of ['gone', 'stall', 'slow', 'partial']) {
      const id = nodes[name].peer.peerId
      await waitUntil(async () => (await findProviders(fetcher.dht, roots[name], { timeout: 10_000, self: fetcher.peerId }).catch(() => [])).some(x => x.id.equals(id)), `the DHT lists ${name}`, 120_000)
    }
    // the "gone" provider leaves; its record stays in the DHT
    await nodes.gone.stop()
    await peers[1].stop()
  })

  after(async () => {
    released()
    await Promise.all(Object.entries(nodes).filter(([n]) => n !== 'gone').map(async ([, n]) => n.stop()))
    await Promise.all(peers.map(async p => p.stop().catch(() => {})))
    await Promise.all(stores.map(async s => s.close()))
    await rm(dir, { recursive: true, force: true })
  })

  const expectBoundedNotFound = async (root: CID, check: (details: Record<string, any>) => void): Promise<number> => {
    const started = Date.now()
    const err = await nodes.fetcher.fetch(root, { retries: RETRIES }).then(() => undefined, (e: unknown) => e)
    const ms = Date.now() - started
    assert.ok(isSwarmpackError(err, 'ERR_NOT_FOUND'), `a typed ERR_NOT_FOUND, got ${String(err)}`)
    assert.ok(ms < BOUND, `failed within ${BOUND} ms (took ${ms})`)
    const details = (err as { details: Record<string, any> }).details
    assert.ok(typeof details.missingCount === 'number' && details.missingCount >= 1, 'says how many blocks are missing')
    assert.ok(Array.isArray(details.missing) && details.missing.length >= 1 && details.missing.length <= 20, 'names missing CIDs (capped)')
    assert.ok(Array.isArray(details.peersAsked), 'says which peers were asked')
    assert.equal(typeof details.lookupFinished, 'boolean', 'says whether the provider lookup finished')
    check(details)
    return ms
  }

  it('(a) no provider in the DHT at all', { timeout: 120_000 }, async () => {
    const missing = (await pack(join(dir, 'content-gone'), { name: 'nobody-has', version: '9.9.9' }, { blockstore: { put: () => {} } })).root
    const ms = await expectBoundedNotFound(missing, (d) => {
      assert.deepEqual(d.peersAsked, [])
      assert.equal(d.missing[0], missing.toString())
    })
    console.log(`(a) failed after ${ms} ms`)
  })

  it('(b) the provider record points at a peer that is gone', { timeout: 120_000 }, async () => {
    const goneId = nodes.gone.peer.peerId.toString()
    const ms = await expectBoundedNotFound(roots.gone, (d) => {
      assert.ok(d.peersAsked.includes(goneId), `the gone peer was asked (${String(d.peersAsked)})`)
    })
    console.log(`(b) failed after ${ms} ms`)
  })

  it('(c) a connected provider that never answers the wants', { timeout: 120_000 }, async () => {
    const stallId = nodes.stall.peer.peerId.toString()
    const ms = await expectBoundedNotFound(roots.stall, (d) => {
      assert.ok(d.peersAsked.includes(stallId), `the stalling peer was asked (${String(d.peersAsked)})`)
      assert.equal(d.lookupFinished, true)
    })
    assert.ok(ms >= STALL_TIMEOUT, 'the stalled want waited the stall time')
    console.log(`(c) failed after ${ms} ms`)
  })

  it('(d) the only provider has the root but none of its other blocks', { timeout: 120_000 }, async () => {
    const partialId = nodes.partial.peer.peerId.toString()
    const ms = await expectBoundedNotFound(roots.partial, (d) => {
      assert.ok(d.peersAsked.includes(partialId), `the partial peer was asked (${String(d.peersAsked)})`)
      assert.ok(d.missingCount > 1, 'the blocks under the root are missing')
    })
    console.log(`(d) failed after ${ms} ms`)
  })

  it('a slow provider that keeps delivering is not failed', { timeout: 180_000 }, async () => {
    const started = Date.now()
    const r = await nodes.fetcher.fetch(roots.slow, { retries: 0 })
    const ms = Date.now() - started
    assert.ok(ms > STALL_TIMEOUT, `the transfer took longer than the stall time (${ms} ms, ${r.blocks} blocks)`)
    assert.deepEqual(r.sources.map(s => s.peer), [nodes.slow.peer.peerId.toString()])
    console.log(`slow provider: ${r.blocks} blocks in ${ms} ms`)
  })
})
