/**
 * The want window during store writes (issue #14): a verified block leaves the sending peer's
 * window at once, so the peer is asked for more while the store syncs, but nothing is handed
 * over before its write is durable (R1). A write that fails does not re-ask at once (a failing
 * disk would loop), and such a session still stalls. Real libp2p nodes on 127.0.0.1, a real
 * durable FsBlockstore whose segment sync is held back (FileHandle#datasync), as a slow disk's is.
 */
import '@swarmpack/core/polyfill'
import assert from 'node:assert/strict'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { FsBlockstore, StoreErrorCode, SwarmpackError } from '@swarmpack/core'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { multihashKey } from '../src/bitswap/wire.js'
import { connect, createPeer, putAll, randomBlocks, stopPeers, waitUntil } from './bitswap-helpers.js'
import type { TestPeer } from './bitswap-helpers.js'
import type { CID } from '@swarmpack/core'
import type { FileHandle } from 'node:fs/promises'

type Datasync = FileHandle['datasync']

/** Node's FileHandle prototype, whose datasync the segment log calls once per batch. */
async function fileHandlePrototype (dir: string): Promise<{ datasync: Datasync }> {
  const fh = await open(join(dir, 'probe'), 'w')
  await fh.close()
  return Object.getPrototypeOf(fh)
}

/** A memory store that serves the blocks in `held` only once the test opens the gate (a slow provider). */
class HoldingBlockstore extends MemoryBlockstore {
  readonly held = new Set<string>()
  private opened!: () => void
  private readonly gate = new Promise<void>(resolve => { this.opened = resolve })

  open (): void { this.opened() }

  override async * get (cid: CID): AsyncGenerator<Uint8Array> {
    if (this.held.has(cid.toString())) await this.gate
    yield * super.get(cid)
  }
}

/** A memory store whose writes fail (a full disk). */
class FailingBlockstore extends MemoryBlockstore {
  override async put (): Promise<CID> {
    throw new SwarmpackError(StoreErrorCode.STORE_IO, 'no space left on device (test)')
  }
}

describe('bitswap: want window during store writes', { timeout: 120_000 }, () => {
  const peers: TestPeer[] = []
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })
  after(async () => { await stopPeers(...peers) })

  /**
   * Fetches 6 windows of blocks from one provider into a durable FsBlockstore whose first segment
   * sync during the transfer waits until the provider has sent three windows' worth of blocks (or
   * 20 s pass: then nothing more was asked during the sync). `getMany`: through getMany with
   * maxWantsInFlight = window, else with one get per block.
   */
  async function transferDuringHeldSync (getMany: boolean): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'swarmpack-bitswap-window-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const store = await FsBlockstore.open(join(dir, 'store'))
    cleanups.push(async () => { await store.close() })
    const provider = await createPeer()
    const fetcher = await createPeer({ blockstore: store as never })
    peers.push(provider, fetcher)
    const window = 8
    const blocks = randomBlocks(6 * window, 16 * 1024)
    await putAll(provider.blockstore, blocks)
    await connect(fetcher, provider)

    const proto = await fileHandlePrototype(dir)
    const datasync = proto.datasync
    let held = false
    let sentWhileHeld = -1
    let handedOverWhileHeld = -1
    let handedOver = 0
    proto.datasync = async function (this: FileHandle) {
      if (!held) {
        held = true
        await waitUntil(() => provider.bitswap.stats().blocksSent >= 3 * window, 'blocks sent during the sync', 20_000).catch(() => {})
        sentWhileHeld = provider.bitswap.stats().blocksSent
        handedOverWhileHeld = handedOver
      }
      return datasync.call(this)
    }
    cleanups.push(async () => { proto.datasync = datasync })

    // no re-asking of a slow peer during the test (it would resend blocks and count them twice)
    const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId], maxWantsPerPeer: window, maxWantsInFlight: window, wantTimeout: 60_000, stallTimeout: 60_000 })
    cleanups.push(async () => { await session.close() })
    const got = new Map<string, Uint8Array>()
    if (getMany) {
      for await (const b of session.getMany(blocks.map(b => b.cid))) {
        handedOver++
        got.set(b.cid.toString(), b.bytes)
      }
    } else {
      await Promise.all(blocks.map(async b => {
        const bytes = await session.get(b.cid)
        handedOver++
        got.set(b.cid.toString(), bytes)
      }))
    }
    proto.datasync = datasync

    assert.ok(held, 'a sync ran during the transfer')
    assert.ok(sentWhileHeld >= 3 * window, `the provider was asked for more than one window (${window}) while the first sync was held; it sent ${sentWhileHeld}`)
    assert.equal(handedOverWhileHeld, 0, 'no block was handed over before its batch was synced')
    for (const b of blocks) assert.deepEqual(got.get(b.cid.toString()), b.bytes)
    assert.equal(store.stats().blocks, blocks.length, 'every block handed over is in the store')
  }

  it('asks the sender for more blocks while a sync is held, and hands none over before it is durable', async () => {
    await transferDuringHeldSync(false)
  })

  it('getMany keeps maxWantsInFlight asked of peers while verified blocks wait for their sync', async () => {
    await transferDuringHeldSync(true)
  })

  it('getMany withdraws the wants still in flight when aborted or left early', async () => {
    const providerStore = new HoldingBlockstore()
    const provider = await createPeer({ blockstore: providerStore })
    const fetcher = await createPeer()
    peers.push(provider, fetcher)
    const blocks = randomBlocks(12, 4 * 1024)
    await putAll(providerStore, blocks)
    for (const b of blocks) providerStore.held.add(b.cid.toString())
    await connect(fetcher, provider)
    const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId] })
    cleanups.push(async () => { providerStore.open(); await session.close() })
    const pending = (): number => blocks.filter(b => session.wantsKey(multihashKey(b.cid))).length

    // aborted while every want waits at the provider
    const controller = new AbortController()
    const got: CID[] = []
    const iterating = (async () => { for await (const b of session.getMany(blocks.slice(1).map(b => b.cid), { signal: controller.signal })) got.push(b.cid) })()
    await waitUntil(() => pending() === blocks.length - 1, 'the wants were made')
    controller.abort()
    await assert.rejects(iterating, { code: 'ERR_ABORTED' })
    assert.equal(got.length, 0)
    assert.equal(pending(), 0, 'no want is left after the abort')

    // left early, after the first block
    providerStore.open()
    for await (const b of session.getMany(blocks.map(b => b.cid))) {
      assert.ok(blocks.some(x => x.cid.equals(b.cid)))
      break
    }
    assert.equal(pending(), 0, 'no want is left after the caller stopped iterating')
  })

  it('does not re-ask at once when a write fails, and stalls when nothing gets stored', async () => {
    const provider = await createPeer()
    const fetcher = await createPeer({ blockstore: new FailingBlockstore() })
    peers.push(provider, fetcher)
    const blocks = randomBlocks(1, 16 * 1024)
    await putAll(provider.blockstore, blocks)
    await connect(fetcher, provider)
    const wantTimeout = 300
    const session = fetcher.bitswap.createSession({ peers: [provider.libp2p.peerId], wantTimeout, stallTimeout: 3000 })
    cleanups.push(async () => { await session.close() })
    const started = Date.now()
    await assert.rejects(session.get(blocks[0].cid), (err: SwarmpackError) => {
      assert.equal(err.code, 'ERR_NOT_FOUND')
      assert.equal((err.details as { reason?: string }).reason, 'stalled')
      return true
    })
    const elapsed = Date.now() - started
    // re-asked once the peer counts as slow (every wantTimeout at most), not in a loop
    const sent = provider.bitswap.stats().blocksSent
    assert.ok(sent >= 1, 'the block was sent')
    assert.ok(sent <= Math.ceil(elapsed / wantTimeout) + 1, `the block was asked again at most once per wantTimeout: ${sent} sends in ${elapsed} ms`)
  })
})
