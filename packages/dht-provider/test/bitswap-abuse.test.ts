/**
 * Misbehaving peers against a real Bitswap node: want floods, unsolicited blocks, oversized and
 * malformed messages. The node must bound what it keeps, reset bad streams and keep serving.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { varint } from 'multiformats'
import { BITSWAP_PROTOCOL, cidPrefix, splitMessages } from '../src/bitswap/index.js'
import { WantType } from '../src/bitswap/pb/message.js'
import { connect, createNode, createPeer, putAll, randomBlocks, stopPeers, waitUntil } from './bitswap-helpers.js'
import type { TestBlock, TestPeer } from './bitswap-helpers.js'
import type { Libp2p, Stream } from '@libp2p/interface'

function frame (bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(varint.encodingLength(bytes.byteLength) + bytes.byteLength)
  varint.encodeTo(bytes.byteLength, out, 0)
  out.set(bytes, varint.encodingLength(bytes.byteLength))
  return out
}

/** Resolves with the stream's final status once it closes (or 'timeout'). */
async function closedStatus (stream: Stream, ms = 30_000): Promise<string> {
  if (stream.status !== 'open') return stream.status
  return new Promise(resolve => {
    const timer = setTimeout(() => { resolve('timeout') }, ms)
    stream.addEventListener('close', () => { clearTimeout(timer); resolve(stream.status) }, { once: true })
  })
}

describe('bitswap: misbehaving peers', () => {
  let target: TestPeer
  let attacker: Libp2p
  const extra: TestPeer[] = []
  const blocks: TestBlock[] = randomBlocks(8, 32 * 1024)

  before(async () => {
    target = await createPeer({ maxWantlistSize: 100, maxUnsolicitedBlocks: 3 })
    await putAll(target.blockstore, blocks)
    attacker = await createNode()
    await connect(attacker, target.libp2p)
  })
  after(async () => {
    await stopPeers(target, ...extra)
    await attacker.stop()
  })

  /** The target still serves an honest peer. */
  async function assertServes (): Promise<void> {
    const honest = await createPeer()
    extra.push(honest)
    await connect(honest, target)
    const session = honest.bitswap.createSession({ peers: [target.libp2p.peerId] })
    const got = await session.get(blocks[0].cid, { signal: AbortSignal.timeout(10_000) })
    assert.deepEqual(got, blocks[0].bytes)
    await session.close()
  }

  async function open (): Promise<Stream> {
    return attacker.dialProtocol(target.libp2p.peerId, BITSWAP_PROTOCOL)
  }

  it('bounds the wantlist of a peer flooding wants', async () => {
    const stream = await open()
    const cids = randomBlocks(3000, 8).map(b => b.cid)
    for (let i = 0; i < cids.length; i += 500) {
      const wants = cids.slice(i, i + 500).map(cid => ({ block: cid.bytes, priority: 1, wantType: WantType.WantBlock }))
      for (const m of splitMessages({ wants })) {
        if (!stream.send(frame(m))) await stream.onDrain()
      }
    }
    const me = attacker.peerId.toString()
    await waitUntil(() => (target.bitswap.stats().peers.find(p => p.peer === me)?.wantsReceived ?? 0) >= cids.length)
    const stats = target.bitswap.stats().peers.find(p => p.peer === me)
    assert.ok(stats !== undefined)
    assert.equal(stats.wantlistSize, 100)
    assert.equal(stats.wantsDropped, cids.length - 100)
    assert.equal(stream.status, 'open', 'wants beyond the limit are ignored, not punished')
    await stream.close()
    await assertServes()
  })

  it('drops unsolicited blocks without storing them, then bans the sender', async () => {
    const junk = randomBlocks(6, 1024)
    const stream = await open()
    const send = async (some: TestBlock[]): Promise<void> => {
      for (const m of splitMessages({ blocks: some.map(b => ({ prefix: cidPrefix(b.cid), data: b.bytes })) })) {
        if (!stream.send(frame(m))) await stream.onDrain()
      }
    }
    const me = attacker.peerId.toString()
    await send(junk.slice(0, 2))
    await waitUntil(() => (target.bitswap.stats().peers.find(p => p.peer === me)?.unsolicitedBlocks ?? 0) >= 2)
    for (const b of junk) assert.equal(await target.blockstore.has(b.cid), false, 'unsolicited block not stored')
    assert.equal(target.bitswap.isBanned(attacker.peerId), false, 'a couple of stray blocks are tolerated')
    await send(junk.slice(2))
    await waitUntil(() => target.bitswap.isBanned(attacker.peerId))
    for (const b of junk) assert.equal(await target.blockstore.has(b.cid), false)
    await waitUntil(() => target.libp2p.getConnections(attacker.peerId).length === 0)
    await assertServes()
    // later tests need the attacker connected again
    target.bitswap.banList.unban(attacker.peerId)
    await connect(attacker, target.libp2p)
  })

  it('resets a stream announcing an oversized message', async () => {
    const stream = await open()
    const size = 5 * 1024 * 1024
    const prefix = new Uint8Array(varint.encodingLength(size))
    varint.encodeTo(size, prefix, 0)
    stream.send(prefix)
    stream.send(new Uint8Array(64 * 1024))
    assert.equal(await closedStatus(stream), 'reset')
    await assertServes()
  })

  it('resets a stream carrying an oversized message sent in full', async () => {
    const small = await createPeer({ maxIncomingMessageSize: 256 * 1024 })
    extra.push(small)
    await putAll(small.blockstore, blocks)
    await connect(attacker, small.libp2p)
    const stream = await attacker.dialProtocol(small.libp2p.peerId, BITSWAP_PROTOCOL)
    const big = [...splitMessages({ blocks: randomBlocks(1, 300 * 1024).map(b => ({ prefix: cidPrefix(b.cid), data: b.bytes })) })][0]
    stream.send(frame(big))
    assert.equal(await closedStatus(stream), 'reset')
    const honest = await createPeer()
    extra.push(honest)
    await connect(honest, small)
    const session = honest.bitswap.createSession({ peers: [small.libp2p.peerId] })
    assert.deepEqual(await session.get(blocks[1].cid, { signal: AbortSignal.timeout(10_000) }), blocks[1].bytes)
    await session.close()
  })

  it('resets a stream carrying malformed protobuf', async () => {
    for (const junk of [
      new Uint8Array([0x0a, 0x05, 0x01]), // wantlist field claims 5 bytes, has 1
      new Uint8Array([0x0b, 0x01]), // start-group wire type
      new Uint8Array([0x1a, 0x03, 0x0a, 0x7f, 0x00]), // block prefix longer than its block
      new Uint8Array([0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) // endless varint
    ]) {
      const stream = await open()
      stream.send(frame(junk))
      assert.equal(await closedStatus(stream), 'reset', `reset after ${Buffer.from(junk).toString('hex')}`)
    }
    assert.equal(target.bitswap.isBanned(attacker.peerId), false, 'a few bad messages cost only their streams')
    await assertServes()
  })

  it('bans a peer that keeps sending bad messages', async () => {
    let sent = 0
    while (!target.bitswap.isBanned(attacker.peerId) && sent < 10) {
      const stream = await open()
      stream.send(frame(new Uint8Array([0x0b, 0x01])))
      await closedStatus(stream)
      sent++
    }
    assert.ok(target.bitswap.isBanned(attacker.peerId))
    assert.ok(sent <= 8)
    await waitUntil(() => target.libp2p.getConnections(attacker.peerId).length === 0)
    await assertServes()
  })
})
