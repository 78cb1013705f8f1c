/**
 * Want-blocks without a want-have round trip when the answer is predictable (session.ts
 * `trusting`, peer-history.ts): peers that have confirmed every block asked of them, or that
 * announced the root, get want-blocks at once, spread over them, with no want-haves; the first
 * DontHave sends the session back to want-haves first. Real Bitswap nodes over TCP on 127.0.0.1;
 * counted on the providers' ledgers (wants received) and the fetcher's duplicate counter.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { BlockPresenceType, WantType } from '../src/bitswap/pb/message.js'
import { SESSION_INITIAL_PEER_WINDOW } from '../src/bitswap/constants.js'
import { cidPrefix } from '../src/bitswap/wire.js'
import { RawBitswapClient, connect, createPeer, putAll, randomBlocks, readAll, stopPeers } from './bitswap-helpers.js'
import type { TestBlock, TestPeer } from './bitswap-helpers.js'
import type { Message, WantlistEntry } from '../src/bitswap/pb/message.js'
import type { Libp2p, PeerId } from '@libp2p/interface'

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

/** Wants (want-have and want-block, not cancels) each provider has received from `fetcher`. */
function wantsReceived (providers: TestPeer[], fetcher: TestPeer): number[] {
  const id = fetcher.libp2p.peerId.toString()
  return providers.map(p => p.bitswap.stats().peers.find(l => l.peer === id)?.wantsReceived ?? 0)
}

const sum = (xs: number[]): number => xs.reduce((n, x) => n + x, 0)

/** Dials, trying again (3 attempts) when the handshake times out: five nodes on a loaded 2-core machine. */
async function connectAll (from: TestPeer, to: Array<TestPeer | Libp2p>): Promise<void> {
  for (const peer of to) {
    for (let attempt = 1; ; attempt++) {
      try {
        await connect(from, peer)
        break
      } catch (err) {
        if (attempt >= 3) throw err
      }
    }
  }
}

async function fetchAll (session: { getMany: (cids: Iterable<TestBlock['cid']>) => AsyncIterable<{ source: string }> }, blocks: TestBlock[]): Promise<Map<string, number>> {
  const sources = new Map<string, number>()
  for await (const b of session.getMany(blocks.map(b => b.cid))) sources.set(b.source, (sources.get(b.source) ?? 0) + 1)
  assert.equal(sum([...sources.values()]), blocks.length)
  return sources
}

describe('bitswap: want-blocks without a want-have round trip', () => {
  const peers: TestPeer[] = []
  const clients: RawBitswapClient[] = []
  after(async () => {
    await stopPeers(...peers)
    for (const c of clients) await c.stop()
  })

  it('four providers that confirmed every block get want-blocks directly, spread over all four, with no want-haves', async () => {
    const warmup = randomBlocks(32, 8 * 1024)
    const blocks = randomBlocks(200, 8 * 1024)
    const providers = await Promise.all([createPeer(), createPeer(), createPeer(), createPeer()])
    const fetcher = await createPeer()
    peers.push(...providers, fetcher)
    for (const p of providers) await putAll(p.blockstore, [...warmup, ...blocks])
    await connectAll(fetcher, providers)
    // no wall-clock fallback within the test: only answers decide who is asked
    const session = fetcher.bitswap.createSession({ peers: providers.map(p => p.libp2p.peerId), wantTimeout: 3_600_000 })
    await fetchAll(session, warmup)
    const before = wantsReceived(providers, fetcher)

    const sources = await fetchAll(session, blocks)
    for (const b of blocks) assert.deepEqual(await readAll(fetcher.blockstore, b.cid), b.bytes)
    const asked = wantsReceived(providers, fetcher).map((n, i) => n - before[i])
    // a want-have round would cost a want per provider per block (4 x 200, plus the want-blocks);
    // here one want-block per block, plus the few moved at the tail to a peer running dry
    assert.ok(sum(asked) <= blocks.length * 1.15, `providers received ${sum(asked)} wants for ${blocks.length} blocks (${asked.join(', ')})`)
    for (const p of providers) assert.ok((sources.get(p.libp2p.peerId.toString()) ?? 0) > 0, 'every provider served a share')
    const duplicates = fetcher.bitswap.stats().duplicateBlocks
    assert.ok(duplicates <= blocks.length / 20, `${duplicates} blocks arrived twice`)
    await session.close()
  })

  it('providers found through the root\'s provider records are asked for blocks without want-haves from the first block', async () => {
    const blocks = randomBlocks(120, 8 * 1024)
    const root = blocks[0].cid
    const providers = await Promise.all([createPeer(), createPeer(), createPeer()])
    const fetcher = await createPeer()
    peers.push(...providers, fetcher)
    for (const p of providers) await putAll(p.blockstore, blocks)
    await connectAll(fetcher, providers)
    const session = fetcher.bitswap.createSession({
      root,
      wantTimeout: 3_600_000,
      findProviders: async function * (cid) {
        // records exist for the root only
        if (cid.equals(root)) for (const p of providers) yield p.libp2p.peerId
      }
    })
    await fetchAll(session, blocks)
    const asked = wantsReceived(providers, fetcher)
    assert.ok(sum(asked) <= blocks.length * 1.15, `providers received ${sum(asked)} wants for ${blocks.length} blocks (${asked.join(', ')})`)
    assert.ok(fetcher.bitswap.stats().duplicateBlocks <= blocks.length / 20)
    await session.close()
  })

  it('the first DontHave sends the session back to want-haves: the lacking peer gets no want-block past its first window, and no bytes arrive twice', async () => {
    const blocks = randomBlocks(120, 8 * 1024)
    const held = new Set(blocks.filter((_, i) => i % 2 === 0).map(b => hex(b.cid.bytes)))
    const byCid = new Map(blocks.map(b => [hex(b.cid.bytes), b]))
    const full = await Promise.all([createPeer(), createPeer()])
    const fetcher = await createPeer()
    peers.push(...full, fetcher)
    const partial = await RawBitswapClient.create()
    clients.push(partial)
    // holds half the blocks: the bytes for a want-block, Have for a want-have; DontHave for the rest
    partial.answer = (message: Message) => {
      const asked = (message.wantlist?.entries ?? []).filter(e => e.cancel !== true)
      const sendBlocks = asked.filter(e => held.has(hex(e.block)) && e.wantType === WantType.WantBlock)
      const presences = asked.filter(e => !(held.has(hex(e.block)) && e.wantType === WantType.WantBlock))
        .map(e => ({ cid: e.block, type: held.has(hex(e.block)) ? BlockPresenceType.Have : BlockPresenceType.DontHave }))
      return {
        blocks: sendBlocks.map(e => { const b = byCid.get(hex(e.block))!; return { prefix: cidPrefix(b.cid), data: b.bytes } }),
        presences
      }
    }
    for (const p of full) await putAll(p.blockstore, blocks)
    await connectAll(fetcher, [...full, partial.libp2p])
    const ids: PeerId[] = [...full.map(p => p.libp2p.peerId), partial.libp2p.peerId]
    const session = fetcher.bitswap.createSession({ peers: ids, wantTimeout: 3_600_000 })
    await fetchAll(session, blocks)
    for (const b of blocks) assert.deepEqual(await readAll(fetcher.blockstore, b.cid), b.bytes)

    const entries: WantlistEntry[] = partial.received.flatMap(m => m.wantlist?.entries ?? []).filter(e => e.cancel !== true)
    const blindWantBlocks = entries.filter(e => e.wantType === WantType.WantBlock && !held.has(hex(e.block)))
    // before its first DontHave it was trusted like the others, with one window of want-blocks at most
    assert.ok(blindWantBlocks.length <= SESSION_INITIAL_PEER_WINDOW, `${blindWantBlocks.length} want-blocks for blocks it lacks`)
    const lacking = blocks.filter(b => !held.has(hex(b.cid.bytes)))
    assert.ok(lacking.length > blindWantBlocks.length * 2)
    // afterwards it is asked with want-haves (and says DontHave)
    assert.ok(entries.filter(e => e.wantType === WantType.WantHave && !held.has(hex(e.block))).length > 0)
    assert.equal(fetcher.bitswap.stats().duplicateBlocks, 0)
    await session.close()
  })
})
