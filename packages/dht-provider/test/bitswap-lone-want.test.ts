/**
 * A session's only want (a package root before its links are known) blocks the whole fetch, so
 * it is asked of every peer and raced (session.ts `isLone`, `raceLone`); and a session given
 * enough peers looks no providers up until they fail it (`enoughPeers`). Real Bitswap nodes over
 * TCP on 127.0.0.1; the peer that never answers is a raw Bitswap endpoint that takes wants and
 * stays silent, as an overloaded or broken peer does.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { BlockPresenceType, WantType } from '../src/bitswap/pb/message.js'
import type { Message } from '../src/bitswap/pb/message.js'
import { RawBitswapClient, connect, createPeer, putAll, randomBlocks, stopPeers, waitUntil } from './bitswap-helpers.js'
import type { TestPeer } from './bitswap-helpers.js'

/** Rejects when `promise` takes longer than `ms`: the old behaviour waited for wantTimeout (an hour here). */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} took over ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

describe('bitswap: the lone want', () => {
  const peers: TestPeer[] = []
  const clients: RawBitswapClient[] = []
  after(async () => {
    await stopPeers(...peers)
    for (const c of clients) await c.stop()
  })

  it('a Have from another peer gets the want-block too while the peer holding it stays silent', async () => {
    const [root] = randomBlocks(1, 4096)
    const holder = await createPeer()
    const fetcher = await createPeer()
    peers.push(holder, fetcher)
    const silent = await RawBitswapClient.create()
    clients.push(silent)
    await putAll(holder.blockstore, [root])
    await connect(fetcher, silent.libp2p)
    await connect(fetcher, holder)
    // alone in the session, the silent peer gets the want-block
    const session = fetcher.bitswap.createSession({ peers: [silent.libp2p.peerId], wantTimeout: 3_600_000 })
    const got = session.get(root.cid)
    await silent.waitFor(ms => ms.some(m => m.wantlist?.entries.some(e => e.wantType === WantType.WantBlock)) ? true : undefined)
    // the holder joins: it is asked whether it has the block, says Have, and gets the want-block as well
    session.addPeer(holder.libp2p.peerId)
    assert.deepEqual(await within(got, 10_000, 'the root'), root.bytes)
    assert.equal(session.stats().find(s => s.peer === holder.libp2p.peerId.toString())?.blocks, 1)
    // the silent peer is told it is no longer wanted
    await silent.waitFor(ms => ms.some(m => m.wantlist?.entries.some(e => e.cancel === true)) ? true : undefined)
    await session.close()
  })

  it('a provider record for the root gets the want-block too; many wants at once are not raced', async () => {
    const blocks = randomBlocks(40, 4096)
    const root = blocks[0]
    const holder = await createPeer()
    const fetcher = await createPeer()
    peers.push(holder, fetcher)
    const silent = await RawBitswapClient.create()
    clients.push(silent)
    await putAll(holder.blockstore, blocks)
    await connect(fetcher, silent.libp2p)
    await connect(fetcher, holder)
    let release: () => void = () => {}
    const recordFound = new Promise<void>(resolve => { release = resolve })
    const session = fetcher.bitswap.createSession({
      root: root.cid,
      peers: [silent.libp2p.peerId],
      wantTimeout: 3_600_000,
      // the record arrives once the want-block has gone to the silent peer
      findProviders: async function * () { await recordFound; yield holder.libp2p.peerId }
    })
    const got = session.get(root.cid)
    await silent.waitFor(ms => ms.some(m => m.wantlist?.entries.some(e => e.wantType === WantType.WantBlock)) ? true : undefined)
    release()
    assert.deepEqual(await within(got, 10_000, 'the root'), root.bytes)

    await session.close()

    // many wants at once with two holders not yet confirmed: each block is sent once (no race)
    const second = await createPeer()
    peers.push(second)
    await putAll(second.blockstore, blocks)
    await connect(fetcher, second)
    const rest = randomBlocks(60, 4096)
    await putAll(holder.blockstore, rest)
    await putAll(second.blockstore, rest)
    const sentBefore = holder.bitswap.stats().blocksSent + second.bitswap.stats().blocksSent
    const many = fetcher.bitswap.createSession({ peers: [holder.libp2p.peerId, second.libp2p.peerId], wantTimeout: 3_600_000 })
    let n = 0
    for await (const b of many.getMany(rest.map(b => b.cid))) { void b; n++ }
    assert.equal(n, rest.length)
    assert.equal(holder.bitswap.stats().blocksSent + second.bitswap.stats().blocksSent - sentBefore, rest.length)
    assert.equal(fetcher.bitswap.stats().duplicateBlocks, 0)
    await many.close()
  })

  it('a session given enough peers looks providers up only once they fail it', async () => {
    const [held, missing] = randomBlocks(2, 4096)
    const a = await createPeer()
    const b = await createPeer()
    const c = await createPeer()
    const fetcher = await createPeer()
    peers.push(a, b, c, fetcher)
    await putAll(a.blockstore, [held])
    await putAll(b.blockstore, [held])
    await putAll(c.blockstore, [missing])
    for (const p of [a, b, c]) await connect(fetcher, p)
    let lookups = 0
    const session = fetcher.bitswap.createSession({
      root: held.cid,
      peers: [a.libp2p.peerId, b.libp2p.peerId],
      enoughPeers: 2,
      findProviders: async function * () { lookups++; yield c.libp2p.peerId }
    })
    assert.equal(session.wantsMorePeers(), false)
    assert.deepEqual(await session.get(held.cid), held.bytes)
    assert.equal(lookups, 0, 'no lookup while the given peers deliver')
    // neither given peer has this one: they say DontHave, and only then is the DHT asked
    assert.deepEqual(await within(session.get(missing.cid), 10_000, 'the block found through a lookup'), missing.bytes)
    assert.equal(lookups, 1)
    await session.close()

    // fewer peers than enough: the root's providers are looked up at once
    let early = 0
    const small = fetcher.bitswap.createSession({ root: held.cid, peers: [a.libp2p.peerId], enoughPeers: 2, findProviders: async function * () { early++ } })
    assert.equal(small.wantsMorePeers(), true)
    assert.equal(early, 1)
    await small.close()
  })

  it('a session given enough peers asks a slow holder again rather than looking the block up', async () => {
    const [x, y] = randomBlocks(2, 4096)
    const fetcher = await createPeer()
    peers.push(fetcher)
    // the holder says Have and then never delivers (an overloaded seed); the other lacks everything
    const holder = await RawBitswapClient.create()
    const lacking = await RawBitswapClient.create()
    clients.push(holder, lacking)
    const presenceOf = (type: BlockPresenceType) => (m: Message) => {
      const asked = (m.wantlist?.entries ?? []).filter(e => e.cancel !== true && (type === BlockPresenceType.DontHave || e.wantType === WantType.WantHave))
      return asked.length > 0 ? { presences: asked.map(e => ({ cid: e.block, type })) } : undefined
    }
    holder.answer = presenceOf(BlockPresenceType.Have)
    lacking.answer = presenceOf(BlockPresenceType.DontHave)
    await connect(fetcher, holder.libp2p)
    await connect(fetcher, lacking.libp2p)
    let lookups = 0
    const session = fetcher.bitswap.createSession({
      peers: [holder.libp2p.peerId, lacking.libp2p.peerId],
      enoughPeers: 2,
      wantTimeout: 300,
      findProviders: async function * () { lookups++ }
    })
    // two wants: a lone want is raced instead (see above)
    const gets = [session.get(x.cid), session.get(y.cid)].map(async p => p.catch(() => undefined))
    const wantBlocks = (): number => holder.received.flatMap(m => m.wantlist?.entries ?? []).filter(e => e.cancel !== true && e.wantType === WantType.WantBlock && Buffer.from(e.block).equals(x.cid.bytes)).length
    await waitUntil(() => wantBlocks() >= 2, 'the want-block asked of the slow holder again')
    assert.equal(lookups, 0, 'no provider lookup for a block while the session knows enough peers')
    await session.close()
    await Promise.all(gets)
  })
})
