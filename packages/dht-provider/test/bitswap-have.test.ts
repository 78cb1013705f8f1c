/**
 * Who gets asked for what (Bitswap 1.2.0 want-have / want-block scheduling), seen on the wire
 * with hand-driven Bitswap peers and measured with real ones, all over TCP on 127.0.0.1:
 * want-block only to a peer that said Have, DontHave peers left alone until they say Have,
 * cancels everywhere once the block is in, DontHave-then-Have on the serving side (never
 * unasked bytes), and duplicate bytes near zero when every downloader asks every other.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { BlockPresenceType, WantType } from '../src/bitswap/pb/message.js'
import { cidPrefix } from '../src/bitswap/wire.js'
import { RawBitswapClient, connect, createPeer, putAll, randomBlocks, readAll, stopPeers, waitUntil } from './bitswap-helpers.js'
import type { TestBlock, TestPeer } from './bitswap-helpers.js'
import type { Message, WantlistEntry } from '../src/bitswap/pb/message.js'
import type { CID } from 'multiformats/cid'

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const entries = (client: RawBitswapClient): WantlistEntry[] => client.received.flatMap(m => m.wantlist?.entries ?? [])
const wantsFor = (client: RawBitswapClient, cid: CID): WantlistEntry[] => entries(client).filter(e => hex(e.block) === hex(cid.bytes))
const presences = (client: RawBitswapClient): Map<string, BlockPresenceType> =>
  new Map(client.received.flatMap(m => m.blockPresences.map(p => [hex(p.cid), p.type] as const)))

/** A hand-driven peer's answer to wants for blocks it lacks: DontHave, as send-dont-have asks. */
const dontHaveAll = (message: Message): { presences: Array<{ cid: Uint8Array, type: BlockPresenceType }> } | undefined => {
  const asked = (message.wantlist?.entries ?? []).filter(e => e.cancel !== true && e.sendDontHave === true)
  return asked.length > 0 ? { presences: asked.map(e => ({ cid: e.block, type: BlockPresenceType.DontHave })) } : undefined
}

describe('bitswap: want-have scheduling', () => {
  const peers: TestPeer[] = []
  const clients: RawBitswapClient[] = []
  after(async () => {
    await stopPeers(...peers)
    for (const c of clients) await c.stop()
  })

  it('once a peer has said DontHave, sends want-block only to a peer that said Have; the lacking peer gets want-haves, answers DontHave, then cancels', async () => {
    const [first, ...blocks] = randomBlocks(41, 16 * 1024)
    const full = await createPeer()
    const fetcher = await createPeer()
    peers.push(full, fetcher)
    const lacking = await RawBitswapClient.create()
    clients.push(lacking)
    lacking.answer = dontHaveAll
    await putAll(full.blockstore, [first, ...blocks])
    await connect(fetcher, full)
    await connect(fetcher.libp2p, lacking.libp2p)
    // no wall-clock fallback within the test: only Have/DontHave decide who is asked
    const session = fetcher.bitswap.createSession({ peers: [lacking.libp2p.peerId], wantTimeout: 3_600_000 })
    // its lone peer says DontHave: nobody else to ask
    await assert.rejects(session.get(first.cid), (err: Error & { code?: string }) => err.code === 'ERR_NOT_FOUND')
    const before = lacking.received.length
    session.addPeer(full.libp2p.peerId)
    const sources = new Set<string>()
    for await (const b of session.getMany([first, ...blocks].map(b => b.cid))) sources.add(b.source)
    assert.deepEqual([...sources], [full.libp2p.peerId.toString()])
    for (const b of blocks) assert.deepEqual(await readAll(fetcher.blockstore, b.cid), b.bytes)

    const later = lacking.received.slice(before).flatMap(m => m.wantlist?.entries ?? [])
    for (const b of [first, ...blocks]) {
      const wants = later.filter(e => hex(e.block) === hex(b.cid.bytes) && e.cancel !== true)
      assert.ok(wants.length > 0, 'the peer was asked whether it has the block')
      assert.ok(wants.every(e => e.wantType === WantType.WantHave && e.sendDontHave === true), 'never a want-block to a peer that did not say Have')
    }
    // the want-haves it keeps are withdrawn once the blocks are in
    await lacking.waitFor(() => blocks.every(b => wantsFor(lacking, b.cid).some(e => e.cancel === true)))
    assert.equal(fetcher.bitswap.stats().duplicateBlocks, 0)
    assert.equal(full.bitswap.stats().blocksSent, blocks.length + 1)
    await session.close()
  })

  it('asks a peer that said DontHave for the block only after it says Have, and cancels at the silent one', async () => {
    const [block] = randomBlocks(1, 8 * 1024)
    const fetcher = await createPeer()
    peers.push(fetcher)
    const [other] = randomBlocks(1, 8 * 1024)
    const later = await RawBitswapClient.create() // lacks the block at first, gets it later
    const silent = await RawBitswapClient.create() // never answers
    clients.push(later, silent)
    later.answer = dontHaveAll
    await connect(fetcher.libp2p, later.libp2p)
    await connect(fetcher.libp2p, silent.libp2p)
    const session = fetcher.bitswap.createSession({ peers: [later.libp2p.peerId], wantTimeout: 3_600_000 })
    // `later` has said DontHave once: from now on, want-haves first
    await assert.rejects(session.get(other.cid), (err: Error & { code?: string }) => err.code === 'ERR_NOT_FOUND')
    session.addPeer(silent.libp2p.peerId)
    const got = session.get(block.cid)
    // both are asked want-have; `later` said DontHave
    await later.waitFor(() => wantsFor(later, block.cid).length > 0)
    await silent.waitFor(() => wantsFor(silent, block.cid).length > 0)
    later.answer = (message) => {
      // from now on it holds the block: a want-block for it is answered with the bytes
      const asked = (message.wantlist?.entries ?? []).some(e => e.cancel !== true && e.wantType === WantType.WantBlock && hex(e.block) === hex(block.cid.bytes))
      return asked ? { blocks: [{ prefix: cidPrefix(block.cid), data: block.bytes }] } : undefined
    }
    assert.ok(wantsFor(later, block.cid).every(e => e.wantType === WantType.WantHave), 'no want-block before Have')
    await later.send(fetcher.libp2p, { presences: [{ cid: block.cid.bytes, type: BlockPresenceType.Have }] })
    assert.deepEqual(await got, block.bytes)
    assert.ok(wantsFor(later, block.cid).some(e => e.wantType === WantType.WantBlock && e.cancel !== true), 'asked for the block after Have')
    assert.ok(wantsFor(silent, block.cid).every(e => e.cancel === true || e.wantType === WantType.WantHave), 'the silent peer only got a want-have')
    await silent.waitFor(() => wantsFor(silent, block.cid).some(e => e.cancel === true))
    await session.close()
  })

  it('serving: lacking a block, answers DontHave, then Have when it arrives; bytes only for a want-block without send-dont-have', async () => {
    const server = await createPeer()
    peers.push(server)
    const client = await RawBitswapClient.create()
    clients.push(client)
    // above the 1 KiB under which a Have is replaced by the block itself
    const [asBlock, asHave, quiet, sentinel] = randomBlocks(4, 8 * 1024)
    await connect(client.libp2p, server.libp2p)
    await client.send(server.libp2p, {
      wants: [
        { block: asBlock.cid.bytes, priority: 1, wantType: WantType.WantBlock, sendDontHave: true },
        { block: asHave.cid.bytes, priority: 1, wantType: WantType.WantHave, sendDontHave: true },
        { block: quiet.cid.bytes, priority: 1, wantType: WantType.WantBlock }
      ]
    })
    await client.waitFor(() => presences(client).size >= 2)
    assert.equal(presences(client).get(hex(asBlock.cid.bytes)), BlockPresenceType.DontHave)
    assert.equal(presences(client).get(hex(asHave.cid.bytes)), BlockPresenceType.DontHave)
    assert.equal(presences(client).has(hex(quiet.cid.bytes)), false)

    await putAll(server.blockstore, [asBlock, asHave, quiet, sentinel])
    server.bitswap.notifyNewBlocks([asBlock.cid, asHave.cid, quiet.cid])
    await client.waitFor(() => presences(client).get(hex(asBlock.cid.bytes)) === BlockPresenceType.Have &&
      presences(client).get(hex(asHave.cid.bytes)) === BlockPresenceType.Have)
    // a later want on the same stream: once it is answered, anything sent before it is in too
    await client.send(server.libp2p, { wants: [{ block: sentinel.cid.bytes, priority: 1, wantType: WantType.WantBlock }] })
    await client.waitFor(r => r.flatMap(m => m.payload).some(b => Buffer.from(b.data).equals(sentinel.bytes)))
    const sent = client.received.flatMap(m => m.payload).map(b => Buffer.from(b.data))
    assert.ok(sent.some(d => d.equals(quiet.bytes)), 'a plain want-block waits and gets the block')
    assert.ok(!sent.some(d => d.equals(asBlock.bytes)), 'no bytes after DontHave: the asker looks elsewhere')
    assert.ok(!sent.some(d => d.equals(asHave.bytes)), 'no bytes for a want-have')
    assert.equal(server.bitswap.stats().blocksSent, 2)
  })

  it('serving: a full wantlist makes room for a want-block by dropping a waiting want-have', async () => {
    const server = await createPeer({ maxWantlistSize: 4 })
    peers.push(server)
    const client = await RawBitswapClient.create()
    clients.push(client)
    const lacking = randomBlocks(4, 2048)
    const [held] = randomBlocks(1, 8 * 1024)
    await putAll(server.blockstore, [held])
    await connect(client.libp2p, server.libp2p)
    await client.send(server.libp2p, { wants: lacking.map(b => ({ block: b.cid.bytes, priority: 1, wantType: WantType.WantHave, sendDontHave: true })) })
    await client.waitFor(() => presences(client).size >= 4)
    await client.send(server.libp2p, { wants: [{ block: held.cid.bytes, priority: 1, wantType: WantType.WantBlock, sendDontHave: true }] })
    await client.waitFor(r => r.flatMap(m => m.payload).some(b => Buffer.from(b.data).equals(held.bytes)))
    const ledger = server.bitswap.stats().peers.find(p => p.peer === client.libp2p.peerId.toString())
    assert.equal(ledger?.wantsDropped, 0)
  })

  it('keeps duplicate bytes near zero when a seed and three downloaders all ask each other', async () => {
    const blocks = randomBlocks(96, 32 * 1024)
    const total = blocks.reduce((n, b) => n + b.bytes.byteLength, 0)
    const seed = await createPeer()
    const downloaders = await Promise.all([createPeer(), createPeer(), createPeer()])
    const all = [seed, ...downloaders]
    peers.push(...all)
    await putAll(seed.blockstore, blocks)
    for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) await connect(all[i], all[j])
    await Promise.all(downloaders.map(async (d, i) => {
      const others = all.filter(p => p !== d).map(p => p.libp2p.peerId)
      // a different order each, as fetchDag shuffles every level
      const order = shuffle(blocks, i)
      const session = d.bitswap.createSession({ peers: others, maxWantsPerPeer: 16, wantTimeout: 3_600_000 })
      let n = 0
      for await (const b of session.getMany(order.map(b => b.cid))) { n++; void b }
      assert.equal(n, blocks.length)
      await session.close()
    }))
    for (const d of downloaders) {
      for (const b of blocks) assert.deepEqual(await readAll(d.blockstore, b.cid), b.bytes)
      const received = d.bitswap.stats().bytesReceived
      assert.ok(received <= total * 1.1, `a downloader received ${(received / total).toFixed(2)}x the blocks' bytes`)
    }
  })
})

/** A deterministic permutation (rotation + stride), different for each `seed`. */
function shuffle (blocks: TestBlock[], seed: number): TestBlock[] {
  const n = blocks.length
  const stride = [1, 5, 7, 11][seed % 4]
  return blocks.map((_, i) => blocks[(i * stride + seed * 17) % n])
}
