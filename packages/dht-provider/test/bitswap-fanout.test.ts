/**
 * How many control entries a want costs in a swarm, seen on the wire with hand-driven Bitswap
 * peers over TCP on 127.0.0.1. In a 1 + 20 distribution every block used to be asked of all
 * twenty peers (each DontHave brought the next peer in while the others had not answered yet)
 * and every peer asked got a cancel, even those whose Have had already ended the want at their
 * side: ~47 control entries per block per downloader, most of the swarm's CPU.
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
})
