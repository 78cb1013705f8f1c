/**
 * How many control entries a want costs in a swarm, seen on the wire with hand-driven Bitswap
 * peers over TCP on 127.0.0.1. In a 1 + 20 distribution every block used to be asked of all
 * twenty peers (each DontHave brought the next peer in while the others had not answered yet)
 * and every peer asked got a cancel, even those whose Have had already ended the want at their
 * side: ~47 control entries per block per downloader, most of the swarm's CPU. Batched wants
 * also ride along with what the engine sends a peer, rather than costing a message of their own.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { SESSION_WANT_HAVE_FANOUT } from '../src/bitswap/constants.js'
import { BlockPresenceType, WantType } from '../src/bitswap/pb/message.js'
import { cidPrefix } from '../src/bitswap/wire.js'
import { RawBitswapClient, connect, createPeer, putAll, randomBlocks, stopPeers, waitUntil } from './bitswap-helpers.js'
import type { TestBlock, TestPeer } from './bitswap-helpers.js'
import type { Message, WantlistEntry } from '../src/bitswap/pb/message.js'
import type { CID } from 'multiformats/cid'

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const entriesFor = (client: RawBitswapClient, cid: CID): WantlistEntry[] =>
  client.received.flatMap(m => m.wantlist?.entries ?? []).filter(e => hex(e.block) === hex(cid.bytes))
const askedHave = (client: RawBitswapClient, cid: CID): boolean => entriesFor(client, cid).some(e => e.cancel !== true && e.wantType === WantType.WantHave)

/** Resolves true if `check` comes to hold within `ms`, false if not (for asserting that something does not happen). */
async function holdsWithin (check: () => boolean, ms: number): Promise<boolean> {
  try {
    await waitUntil(check, 'check', ms)
    return true
  } catch {
    return false
  }
}

describe('bitswap: control entries per want', () => {
  const peers: TestPeer[] = []
  const clients: RawBitswapClient[] = []
  after(async () => {
    await stopPeers(...peers)
    for (const c of clients) await c.stop()
  })

  it('a DontHave brings no new peer in while others asked have not answered; once all have, the next peers are asked', async () => {
    const [z, x, y] = randomBlocks(3, 4096)
    const fetcher = await createPeer()
    peers.push(fetcher)
    const silent = await Promise.all(Array.from({ length: SESSION_WANT_HAVE_FANOUT + 4 }, async () => RawBitswapClient.create()))
    clients.push(...silent)
    for (const c of silent) await connect(fetcher, c.libp2p)
    const session = fetcher.bitswap.createSession({ peers: silent.map(c => c.libp2p.peerId), wantTimeout: 3_600_000 })
    // a session's lone want is asked of everyone (see bitswap-lone-want.test.ts): z goes first
    const gets = [session.get(z.cid)]
    await waitUntil(() => silent.every(c => entriesFor(c, z.cid).length > 0), 'the lone want asked of all')
    gets.push(session.get(x.cid), session.get(y.cid))
    await waitUntil(() => silent.filter(c => askedHave(c, x.cid)).length >= SESSION_WANT_HAVE_FANOUT, 'the first want-haves')
    const first = silent.filter(c => askedHave(c, x.cid))
    assert.equal(first.length, SESSION_WANT_HAVE_FANOUT)
    // while the session trusts its peers, one of them may hold x's want-block
    const holding = silent.filter(c => !first.includes(c) && entriesFor(c, x.cid).length > 0)
    const rest = silent.filter(c => entriesFor(c, x.cid).length === 0)
    assert.ok(rest.length >= 3)

    // one of them lacks it; the others have not answered yet
    await first[0].send(fetcher.libp2p, { presences: [{ cid: x.cid.bytes, type: BlockPresenceType.DontHave }] })
    await waitUntil(() => fetcher.bitswap.stats().entriesReceived.dontHaves >= 1, 'the DontHave handled')
    assert.equal(await holdsWithin(() => rest.some(c => askedHave(c, x.cid)), 1500), false, 'no peer beyond the first asked while answers are pending')

    // all of them lack it: the remaining peers are asked, so a block is still asked of everyone before it is declared missing
    for (const c of [...first.slice(1), ...holding]) await c.send(fetcher.libp2p, { presences: [{ cid: x.cid.bytes, type: BlockPresenceType.DontHave }] })
    await waitUntil(() => rest.every(c => askedHave(c, x.cid)), 'the next peers asked')
    await session.close()
    await Promise.all(gets.map(async p => p.catch(() => undefined)))
  })

  it('no cancel goes to a peer whose Have already ended our want-have at its side', async () => {
    const blocks = randomBlocks(24, 8192)
    const [extra] = randomBlocks(1, 8192)
    const holder = await createPeer()
    const fetcher = await createPeer()
    peers.push(holder, fetcher)
    await putAll(holder.blockstore, blocks)
    // a hand-driven holder of every block: Have for want-haves, the block for want-blocks
    const byHex = new Map<string, TestBlock>([...blocks, extra].map(b => [hex(b.cid.bytes), b]))
    const saidHave = new Set<string>()
    const sentBlock = new Set<string>()
    const raw = await RawBitswapClient.create()
    clients.push(raw)
    raw.answer = (message: Message) => {
      const haves: Array<{ cid: Uint8Array, type: BlockPresenceType }> = []
      const out: Array<{ prefix: Uint8Array, data: Uint8Array }> = []
      for (const e of message.wantlist?.entries ?? []) {
        const b = byHex.get(hex(e.block))
        if (e.cancel === true || b === undefined) continue
        if (e.wantType === WantType.WantHave) { haves.push({ cid: e.block, type: BlockPresenceType.Have }); saidHave.add(hex(e.block)) } else { out.push({ prefix: cidPrefix(b.cid), data: b.bytes }); sentBlock.add(hex(e.block)) }
      }
      return haves.length + out.length > 0 ? { presences: haves, blocks: out } : undefined
    }
    await connect(fetcher, holder)
    await connect(fetcher, raw.libp2p)
    const session = fetcher.bitswap.createSession({ peers: [holder.libp2p.peerId, raw.libp2p.peerId], wantTimeout: 3_600_000 })
    for await (const b of session.getMany(blocks.map(b => b.cid))) assert.ok(b.bytes.byteLength > 0)
    await session.close()
    // the hand-driven peer said Have to some want-haves and was not asked for those blocks
    const onlyHave = blocks.filter(b => saidHave.has(hex(b.cid.bytes)) && !entriesFor(raw, b.cid).some(e => e.cancel !== true && e.wantType === WantType.WantBlock))
    assert.ok(onlyHave.length > 0, 'some blocks were only asked of it with want-have (else this test shows nothing)')

    // a want-block to it now flushes whatever cancels were still batched for it (one message)
    const later = fetcher.bitswap.createSession({ peers: [raw.libp2p.peerId], wantTimeout: 3_600_000 })
    assert.deepEqual(await later.get(extra.cid), extra.bytes)
    await later.close()
    for (const b of onlyHave) {
      assert.ok(!entriesFor(raw, b.cid).some(e => e.cancel === true), JSON.stringify(entriesFor(raw, b.cid).map(e => [e.wantType, e.cancel, e.sendDontHave])) + `a cancel went to the peer whose Have ended the want for ${b.cid.toString()}`)
    }
  })

  it('a batched cancel rides along with the next message the engine sends that peer', async () => {
    const [x] = randomBlocks(1, 4096)
    const [y] = randomBlocks(1, 64 * 1024)
    const holder = await createPeer()
    // a batch that would wait a minute: only a ride-along delivers the cancel within the test
    const fetcher = await createPeer({ wantBatchMs: 60_000 })
    peers.push(holder, fetcher)
    await putAll(holder.blockstore, [x])
    await putAll(fetcher.blockstore, [y])
    // a silent peer: it takes the want-block for x and never answers
    const lacking = await RawBitswapClient.create()
    clients.push(lacking)
    await connect(fetcher, holder)
    await connect(fetcher, lacking.libp2p)
    const session = fetcher.bitswap.createSession({ peers: [lacking.libp2p.peerId], wantTimeout: 3_600_000 })
    const got = session.get(x.cid)
    await lacking.waitFor(ms => ms.some(m => (m.wantlist?.entries ?? []).some(e => e.wantType === WantType.WantBlock)) ? true : undefined)
    // the holder joins, says Have to the lone want and delivers it: the silent peer is owed a cancel
    session.addPeer(holder.libp2p.peerId)
    assert.deepEqual(await got, x.bytes)
    await session.close()
    assert.ok(entriesFor(lacking, x.cid).length > 0, 'the lacking peer was asked for x')
    assert.ok(!entriesFor(lacking, x.cid).some(e => e.cancel === true), 'the cancel waits in the batch')
    // the lacking peer asks us for y: the block goes back with the cancel for x in the same message
    await lacking.send(fetcher.libp2p, { wants: [{ block: y.cid.bytes, priority: 1, wantType: WantType.WantBlock, sendDontHave: true }] })
    const carrier = await lacking.waitFor(ms => ms.find(m => m.payload.length > 0), 10_000)
    assert.ok((carrier.wantlist?.entries ?? []).some(e => e.cancel === true && hex(e.block) === hex(x.cid.bytes)), 'the cancel for x came with the block')
  })

  it('a want still waiting in the batch when its block arrives is dropped, not cancelled', async () => {
    const [x, y] = randomBlocks(2, 4096)
    const [z] = randomBlocks(1, 64 * 1024)
    const fetcher = await createPeer({ wantBatchMs: 60_000 })
    peers.push(fetcher)
    await putAll(fetcher.blockstore, [z])
    // the holder takes want-blocks and delivers them only when the test says so
    const holder = await RawBitswapClient.create()
    const late = await RawBitswapClient.create()
    clients.push(holder, late)
    await connect(fetcher, holder.libp2p)
    await connect(fetcher, late.libp2p)
    const session = fetcher.bitswap.createSession({ peers: [holder.libp2p.peerId], wantTimeout: 3_600_000 })
    const gets = [session.get(x.cid), session.get(y.cid)]
    await holder.waitFor(ms => [x, y].every(b => ms.some(m => (m.wantlist?.entries ?? []).some(e => e.wantType === WantType.WantBlock && hex(e.block) === hex(b.cid.bytes)))) ? true : undefined)
    // a peer joins: its want-haves for x and y are for later (a want-block is out), so they wait in the batch
    session.addPeer(late.libp2p.peerId)
    await holder.send(fetcher.libp2p, { blocks: [x, y].map(b => ({ prefix: cidPrefix(b.cid), data: b.bytes })) })
    assert.deepEqual(await Promise.all(gets), [x.bytes, y.bytes])
    await session.close()
    // anything still batched for the late peer rides along with the block it now asks for
    await late.send(fetcher.libp2p, { wants: [{ block: z.cid.bytes, priority: 1, wantType: WantType.WantBlock, sendDontHave: true }] })
    await late.waitFor(ms => ms.find(m => m.payload.length > 0), 10_000)
    assert.deepEqual([x, y].flatMap(b => entriesFor(late, b.cid)), [], 'the late peer heard nothing of x and y: no want, no cancel')
    // (with the 300 ms batch of before, the cancels that replaced the wants came on their own)
    assert.equal(await holdsWithin(() => [x, y].some(b => entriesFor(late, b.cid).length > 0), 1500), false, 'nor later')
  })
})
