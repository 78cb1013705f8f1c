import '@swarmpack/core/polyfill'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { rawCid, isSwarmpackError } from '@swarmpack/core'
import { Announcer, indexHeadKey, createSwarmpackPeer, findProviders, getHeadRecords, putHeadRecord, SWARMPACK_DHT_PROTOCOL, type SwarmpackPeer } from '../src/index.js'
import { fixtureFormat, fixtureRecord } from './head-format-fixture.js'

describe('swarmpack peer and DHT discovery (5 loopback peers)', () => {
  const peers: SwarmpackPeer[] = []
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-dht-'))
    const hub = await createSwarmpackPeer({ network: 'loopback', dataDir: join(dir, 'hub'), headRecords: fixtureFormat })
    peers.push(hub)
    const boot = hub.multiaddrs().map(String)
    for (let i = 0; i < 4; i++) peers.push(await createSwarmpackPeer({ network: 'loopback', bootstrap: boot, headRecords: fixtureFormat }))
    await Promise.all(peers.map(async p => p.waitForRoutingTable(1, { timeout: 20_000 })))
  })

  after(async () => {
    await Promise.all(peers.map(async p => p.stop()))
    await rm(dir, { recursive: true, force: true })
  })

  it('speaks the private swarmpack DHT protocol and keeps its key in the data dir', async () => {
    assert.ok(peers[0].libp2p.getProtocols().includes(SWARMPACK_DHT_PROTOCOL))
    assert.ok(!peers[0].libp2p.getProtocols().includes('/ipfs/kad/1.0.0'))
    const again = await createSwarmpackPeer({ network: 'loopback', dataDir: join(dir, 'hub'), listen: [] })
    try {
      assert.ok(again.peerId.equals(peers[0].peerId))
    } finally {
      await again.stop()
    }
  })

  it('reports its addresses with libp2p\'s verdicts: a private listen address counts as verified; an unverified public one is not announced', async () => {
    const listen = peers[0].multiaddrs()[0].toString().replace(/\/p2p\/.*$/, '')
    const own = peers[0].addressStatus().find(a => a.multiaddr === listen)
    assert.deepEqual(own && { verified: own.verified, type: own.type }, { verified: true, type: 'transport' }, JSON.stringify(peers[0].addressStatus()))
    // 3fff::/20 (documentation, RFC 9637) counts as public: announced only once AutoNAT verifies it
    const p = await createSwarmpackPeer({ network: 'loopback', listen: ['/ip4/127.0.0.1/tcp/0'], announce: [] })
    try {
      const m = (p.libp2p as unknown as { components: { addressManager: { addObservedAddr: (ma: unknown) => void } } }).components.addressManager
      const { multiaddr } = await import('@multiformats/multiaddr')
      m.addObservedAddr(multiaddr('/ip6/3fff:77::9/udp/4001/quic-v1'))
      const observed = p.addressStatus().find(a => a.multiaddr.startsWith('/ip6/3fff:77::9'))
      assert.equal(observed?.verified, false, JSON.stringify(p.addressStatus()))
      assert.equal(observed?.type, 'observed')
      assert.ok(!p.multiaddrs().some(a => a.toString().startsWith('/ip6/3fff:77::9')), 'not announced')
    } finally {
      await p.stop()
    }
  })

  it('wraps a host\'s own libp2p node and adds the record validator to its DHT', async () => {
    const { createLibp2p } = await import('libp2p')
    const { tcp } = await import('@libp2p/tcp')
    const { noise } = await import('@chainsafe/libp2p-noise')
    const { yamux } = await import('@chainsafe/libp2p-yamux')
    const { identify } = await import('@libp2p/identify')
    const { ping } = await import('@libp2p/ping')
    const { kadDHT, passthroughMapper } = await import('@libp2p/kad-dht')
    const host = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), ping: ping(), lanDht: kadDHT({ protocol: SWARMPACK_DHT_PROTOCOL, clientMode: false, peerInfoMapper: passthroughMapper }) }
    })
    const wrapped = await createSwarmpackPeer({ libp2p: host as never, bootstrap: [peers[0].multiaddrs()[0].toString()] })
    try {
      assert.equal(typeof wrapped.dht.validators['swarmpack-head'], 'function')
      assert.equal(typeof wrapped.dht.selectors['swarmpack-head'], 'function')
      await wrapped.waitForRoutingTable(1, { timeout: 20_000 })
    } finally {
      await wrapped.stop()
    }
  })

  it('rejects bad config with a typed error', async () => {
    await assert.rejects(createSwarmpackPeer({ listen: ['not-a-multiaddr'] }), (e: unknown) => isSwarmpackError(e, 'ERR_DHT_INVALID_CONFIG'))
    await assert.rejects(createSwarmpackPeer({ network: 'moon' as never }), (e: unknown) => isSwarmpackError(e, 'ERR_DHT_INVALID_CONFIG'))
    await writeFile(join(dir, 'peer.key'), 'garbage')
    await assert.rejects(createSwarmpackPeer({ dataDir: dir }), (e: unknown) => isSwarmpackError(e, 'ERR_DHT_INVALID_KEY'))
  })

  it('announces a root and another peer finds it', async () => {
    const cid = rawCid(new TextEncoder().encode(`root ${Date.now()}`))
    const announcer = new Announcer(peers[1].dht)
    try {
      let ok = false
      for (let i = 0; i < 10 && !ok; i++) ok = await announcer.announce(cid)
      assert.ok(ok)
      const found = await findProviders(peers[4].dht, cid, { timeout: 10_000, self: peers[4].peerId })
      assert.deepEqual(found.map(p => p.id.toString()), [peers[1].peerId.toString()])
      assert.ok(found[0].multiaddrs.length > 0)
      await announcer.withdraw(cid)
      assert.equal(announcer.has(cid), false)
    } finally {
      await announcer.stop()
    }
  })

  it('times out with ERR_DHT_NO_PROVIDERS for an unknown CID', async () => {
    const cid = rawCid(new TextEncoder().encode(`nobody has ${Date.now()}`))
    await assert.rejects(findProviders(peers[2].dht, cid, { timeout: 3000 }), (e: unknown) => isSwarmpackError(e, 'ERR_DHT_NO_PROVIDERS'))
  })

  it('head records through the injected format: highest version wins, forged records are refused', async () => {
    const indexer = await generateKeyPair('Ed25519')
    const key = indexHeadKey(indexer.publicKey)
    await putHeadRecord(peers[1].dht, key, await fixtureRecord(indexer, key, 1))
    await putHeadRecord(peers[2].dht, key, await fixtureRecord(indexer, key, 3))
    const hits = await getHeadRecords(peers[4].dht, key, fixtureFormat)
    assert.equal(hits[0].version, 3)
    // a higher version for this indexer signed by another key: every peer refuses to store it
    const forger = await generateKeyPair('Ed25519')
    const forged = await fixtureRecord(forger, key, 99)
    await assert.rejects(putHeadRecord(peers[3].dht, key, forged), (e: unknown) => isSwarmpackError(e, 'ERR_TEST_BAD_HEAD'))
    const stored: string[] = []
    try {
      for await (const ev of peers[3].dht.put(key, forged)) {
        if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') stored.push(ev.from.toString())
      }
    } catch {}
    assert.deepEqual(stored, [])
    assert.equal((await getHeadRecords(peers[0].dht, key, fixtureFormat))[0].version, 3)
    // a rollback is refused by the publishing node's own memory too
    await assert.rejects(putHeadRecord(peers[2].dht, key, await fixtureRecord(indexer, key, 2)), (e: unknown) => isSwarmpackError(e, 'ERR_DHT_INVALID_RECORD'))
  })

  it('a peer without a head format stores no head records', async () => {
    const plain = await createSwarmpackPeer({ network: 'loopback', bootstrap: peers[0].multiaddrs().map(String) })
    try {
      const indexer = await generateKeyPair('Ed25519')
      const key = indexHeadKey(indexer.publicKey)
      await assert.rejects(putHeadRecord(plain.dht, key, await fixtureRecord(indexer, key, 1)), (e: unknown) => isSwarmpackError(e, 'ERR_DHT_INVALID_RECORD'))
    } finally {
      await plain.stop()
    }
  })
})
