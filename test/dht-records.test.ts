/**
 * Index heads in a DHT of separate processes: the record value is trust's signed head envelope
 * (the one head format, injected into dht-provider by swarmpack). Publishers in this process put
 * heads for one indexer key, test/helpers/swarm-peer.ts peers resolve them. The highest version wins; a
 * stale re-publish, a forged head (signed by another key) and a second head with the same
 * version are refused by every peer.
 */
import '@swarmpack/core/polyfill'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rawCid } from '@swarmpack/core'
import { createSwarmpackPeer, indexHeadKey, type SwarmpackPeer } from '@swarmpack/dht-provider'
import { generateSigningKey, keyIdOf, signIndexHead, type Ed25519PrivateKey } from '@swarmpack/trust'
import { indexHeadRecordFormat, publishHeadToDht } from 'swarmpack'
import { startNode, stopAll, type ChildPeer } from './helpers/swarm.js'

describe('signed index heads in a DHT of processes', { timeout: 300_000 }, () => {
  let dir: string
  const children: ChildPeer[] = []
  const locals: SwarmpackPeer[] = []
  let indexer: Ed25519PrivateKey
  let indexerId: string
  const issued = Date.now()
  const expires = issued + 3_600_000
  const cid = (n: number): ReturnType<typeof rawCid> => rawCid(new TextEncoder().encode(`index ${n}`))
  const head = async (key: Ed25519PrivateKey, version: number, index = cid(version)): Promise<Uint8Array> =>
    (await signIndexHead(key, { indexer: 'main', version, index, issued, expires })).bytes

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-records-'))
    const common = ['--network', 'loopback', '--listen', '/ip4/127.0.0.1/tcp/0']
    const hub = await startNode('hub', [...common, '--data-dir', join(dir, 'hub')])
    children.push(hub)
    children.push(...await Promise.all([0, 1, 2].map(async i => startNode(`peer-${i}`, [...common, '--bootstrap', hub.multiaddrs[0], '--data-dir', join(dir, `p${i}`)]))))
    for (let i = 0; i < 2; i++) locals.push(await createSwarmpackPeer({ network: 'loopback', bootstrap: [hub.multiaddrs[0]], headRecords: indexHeadRecordFormat() }))
    await Promise.all(locals.map(async p => p.waitForRoutingTable(4, { timeout: 60_000, refreshEvery: 3000 })))
    indexer = await generateSigningKey()
    indexerId = keyIdOf(indexer)
  })

  after(async () => {
    await Promise.all(locals.map(async p => p.stop()))
    await stopAll(children)
    await rm(dir, { recursive: true, force: true })
  })

  const headEverywhere = async (): Promise<number[]> => {
    const heads = await Promise.all(children.map(async c => c.command(`head ${indexerId}`, 'head', 30_000)))
    return heads.map(h => h.version as number)
  }

  it('every peer resolves the highest version published', async () => {
    await publishHeadToDht(locals[0].dht, await head(indexer, 1))
    assert.deepEqual(await headEverywhere(), [1, 1, 1, 1])
    await publishHeadToDht(locals[1].dht, await head(indexer, 2))
    const heads = await headEverywhere()
    assert.deepEqual(heads, [2, 2, 2, 2])
    const h = await children[2].command(`head ${indexerId}`, 'head')
    assert.equal(h.index, cid(2).toString())
    assert.equal(h.indexer, 'main')
    assert.equal(h.signer, indexerId)
  })

  it('a stale re-publish of an older version is refused', async () => {
    const stored = await putRaw(locals[0], indexHeadKey(indexerId), await head(indexer, 1))
    assert.equal(stored, 0, 'no peer accepted the older head')
    assert.deepEqual(await headEverywhere(), [2, 2, 2, 2])
  })

  it('a forged record (signed by another key) is refused and a second head with the same version too', async () => {
    const forger = await generateSigningKey()
    assert.equal(await putRaw(locals[1], indexHeadKey(indexerId), await head(forger, 9)), 0)
    const twin = await head(indexer, 2, cid(22))
    assert.equal(await putRaw(locals[1], indexHeadKey(indexerId), twin), 0)
    assert.deepEqual(await headEverywhere(), [2, 2, 2, 2])
  })

  it('a child that never heard of an indexer reports a typed error', async () => {
    const other = keyIdOf(await generateSigningKey())
    children[1].send(`head ${other}`)
    const e = await children[1].next(ev => ev.event === 'error' || ev.event === 'head', 30_000)
    assert.equal(e.event, 'error')
    assert.equal(e.code, 'ERR_DHT_RECORD_NOT_FOUND')
  })
})

/** Puts a raw record value through the DHT; returns how many remote peers stored it. */
async function putRaw (peer: SwarmpackPeer, key: Uint8Array, value: Uint8Array): Promise<number> {
  let stored = 0
  try {
    for await (const ev of peer.dht.put(key, value)) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') stored++
    }
  } catch {}
  return stored
}
