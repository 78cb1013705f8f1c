/**
 * Index heads wherever they travel: trust's signed head envelope in the DHT (real libp2p peers over
 * TCP on 127.0.0.1), in mirror directories, and on a static HTTP mirror (nginx when installed, a
 * Node static file server otherwise). Read back through trust's verification: forged, rolled back,
 * expired and equivocating heads are refused with trust's codes, the highest valid version wins
 * whichever source holds it, and the result names the source.
 */
import '@swarmpack/core/polyfill'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { FsBlockstore, isSwarmpackError, storeProvider, writeMirrorIndexHead } from '@swarmpack/core'
import { indexHeadKey, putHeadRecord, type SwarmpackPeer } from '@swarmpack/dht-provider'
import { buildIndex, generateSigningKey, keyIdOf, signIndexHead, TrustVerifier, type Ed25519PrivateKey, type IndexSlot } from '@swarmpack/trust'
import { NGINX, startNginx } from '../../http-provider/test/helpers/nginx.js'
import { startStaticServer } from '../../http-provider/test/helpers/servers.js'
import { followIndexHead, publishHeadToDht, publishHeadToMirror, readIndexHead, type HeadSource } from '../src/index.js'
import { DAY, startSwarm, stopSwarm, tempDir } from './publish-helpers.js'

const code = (c: string) => (e: unknown): boolean => { assert.ok(isSwarmpackError(e, c), `expected ${c}, got ${(e as { code?: string }).code}: ${(e as Error).message}`); return true }

describe('index heads: DHT, mirror directories and HTTP mirrors', { timeout: 240_000 }, () => {
  let tmp: { dir: string, remove: () => Promise<void> }
  let peers: SwarmpackPeer[]
  let store: FsBlockstore
  let key: Ed25519PrivateKey
  const heads = new Map<number, Uint8Array>()
  const now = Date.now()
  const closers: Array<() => Promise<void>> = []

  /** Builds index version `v` (one more entry each time), stores its blocks, returns the signed head. */
  const entries = new Map<string, Map<string, IndexSlot>>()
  const build = async (v: number, k = key, indexer = 'main'): Promise<Uint8Array> => {
    const built = await buildIndex(k, { indexer, version: v, issued: now, expires: now + DAY, entries })
    for (const b of built.blocks) await store.put(b.cid, b.bytes)
    return built.head.bytes
  }
  const verifier = (name: string): TrustVerifier => new TrustVerifier({
    policy: { indexers: [{ id: 'main', keys: [keyIdOf(key)] }], indexerThreshold: 1, publishers: [] },
    stateDir: join(tmp.dir, 'state', name),
    getBlock: async cid => store.getBytes(cid)
  })
  const dir = (name: string): HeadSource => ({ kind: 'dir', path: join(tmp.dir, name) })

  before(async () => {
    tmp = await tempDir('heads')
    store = await FsBlockstore.open(join(tmp.dir, 'store'), { fsync: false })
    key = await generateSigningKey()
    for (const v of [1, 2, 3, 4, 5]) heads.set(v, await build(v))
    peers = await startSwarm(4)
  })
  after(async () => {
    for (const close of closers) await close().catch(() => {})
    await stopSwarm(peers ?? [])
    await store?.close()
    await tmp?.remove()
  })

  it('a head published in the DHT is read back by another peer and accepted by trust', async () => {
    const put = await publishHeadToDht(peers[1].dht, heads.get(1)!)
    assert.equal(put.head.version, 1)
    const events: string[] = []
    const r = await followIndexHead(verifier('dht-a'), 'main', { sources: [{ kind: 'dht', dht: peers[3].dht }], onProgress: e => events.push(e.type) })
    assert.equal(r.head.version, 1)
    assert.equal(r.update.version, 1)
    assert.equal(r.update.changed, true)
    assert.equal(r.source, 'dht')
    assert.equal(r.kind, 'dht')
    assert.deepEqual([...r.bytes], [...heads.get(1)!], 'the DHT serves the very bytes signed')
    assert.ok(events.includes('swarmpack:heads:selected') && events.includes('swarmpack:trust:index-accepted'))
  })

  it('a forged head (another key) is refused: the DHT will not store it, a mirror copy gets ERR_TRUST_BAD_SIGNATURE', async () => {
    const forger = await generateSigningKey()
    const forged = (await signIndexHead(forger, { indexer: 'main', version: 99, index: (await buildIndex(forger, { indexer: 'main', version: 99, issued: now, expires: now + DAY, entries })).index.cid, issued: now, expires: now + DAY })).bytes
    await assert.rejects(putHeadRecord(peers[2].dht, indexHeadKey(keyIdOf(key)), forged), code('ERR_TRUST_BAD_SIGNATURE'))
    await writeMirrorIndexHead(join(tmp.dir, 'forged'), 'main', forged)
    await assert.rejects(readIndexHead('main', { keys: [keyIdOf(key)], sources: [dir('forged')] }), code('ERR_TRUST_BAD_SIGNATURE'))
    // with the genuine DHT head beside it, the forged one is only reported
    const r = await readIndexHead('main', { keys: [keyIdOf(key)], sources: [dir('forged'), { kind: 'dht', dht: peers[0].dht }] })
    assert.equal(r.head.version, 1)
    assert.equal(r.sources.find(s => s.kind === 'dir')?.refused[0].code, 'ERR_TRUST_BAD_SIGNATURE')
  })

  it('a newer version on a mirror wins over an older one in the DHT, and the other way round', async () => {
    const v = verifier('mixed')
    await publishHeadToMirror(join(tmp.dir, 'm1'), heads.get(2)!)
    const a = await followIndexHead(v, 'main', { sources: [{ kind: 'dht', dht: peers[2].dht }, dir('m1')] })
    assert.equal(a.head.version, 2)
    assert.equal(a.kind, 'dir')
    assert.deepEqual(a.sources.map(s => s.versions).sort(), [[1], [2]])
    await publishHeadToDht(peers[3].dht, heads.get(3)!)
    const b = await followIndexHead(v, 'main', { sources: [dir('m1'), { kind: 'dht', dht: peers[1].dht }] })
    assert.equal(b.head.version, 3)
    assert.equal(b.kind, 'dht')
    assert.equal(b.update.previous, 2)
  })

  it('a rolled-back head is refused with ERR_TRUST_ROLLBACK and the trust state stays', async () => {
    const v = verifier('rollback')
    await v.updateIndexer('main', heads.get(3)!)
    await assert.rejects(followIndexHead(v, 'main', { sources: [dir('m1')] }), code('ERR_TRUST_ROLLBACK'))
    assert.equal((await v.state.read('main'))?.version, 3)
    // the same head again is not a change
    const r = await followIndexHead(v, 'main', { sources: [{ kind: 'dht', dht: peers[0].dht }] })
    assert.equal(r.newer, false)
    assert.equal(r.update.changed, false)
  })

  it('an expired head is refused with ERR_TRUST_FREEZE', async () => {
    const old = (await buildIndex(key, { indexer: 'main', version: 50, issued: now - 3 * DAY, expires: now - 2 * DAY, entries })).head.bytes
    await writeMirrorIndexHead(join(tmp.dir, 'expired'), 'main', old)
    await assert.rejects(readIndexHead('main', { keys: [keyIdOf(key)], sources: [dir('expired')] }), code('ERR_TRUST_FREEZE'))
  })

  it('two different heads with one version are refused with ERR_TRUST_EQUIVOCATION, and trust keeps the evidence', async () => {
    const v = verifier('equivocation')
    await v.updateIndexer('main', heads.get(3)!)
    const twin = (await buildIndex(key, { indexer: 'main', version: 3, issued: now + 1, expires: now + DAY, entries })).head.bytes
    await writeMirrorIndexHead(join(tmp.dir, 'twin'), 'main', twin)
    await assert.rejects(followIndexHead(v, 'main', { sources: [dir('twin')] }), code('ERR_TRUST_EQUIVOCATION'))
    assert.equal((await readdir(join(tmp.dir, 'state', 'equivocation', 'evidence'))).length, 1)
    // two sources disagreeing about a version nobody accepted yet
    await writeMirrorIndexHead(join(tmp.dir, 'twin6a'), 'main', (await buildIndex(key, { indexer: 'main', version: 6, issued: now, expires: now + DAY, entries })).head.bytes)
    await writeMirrorIndexHead(join(tmp.dir, 'twin6b'), 'main', (await buildIndex(key, { indexer: 'main', version: 6, issued: now + 5, expires: now + DAY, entries })).head.bytes)
    await assert.rejects(readIndexHead('main', { keys: [keyIdOf(key)], sources: [dir('twin6a'), dir('twin6b')] }), code('ERR_TRUST_EQUIVOCATION'))
  })

  it('reads a head from a mirror directory through a real HTTP server', async () => {
    const mirror = join(tmp.dir, 'http-mirror')
    await publishHeadToMirror(mirror, heads.get(4)!)
    let url: string
    if (NGINX !== undefined) {
      const nginx = await startNginx(mirror)
      assert.ok(nginx !== undefined)
      closers.push(nginx.close)
      url = nginx.url
    } else {
      const server = await startStaticServer(mirror)
      closers.push(server.close)
      url = server.url
    }
    const v = verifier('http')
    const r = await followIndexHead(v, 'main', { sources: [{ kind: 'mirror', url, name: 'nginx' }, { kind: 'dht', dht: peers[1].dht }] })
    assert.equal(r.head.version, 4)
    assert.equal(r.source, 'nginx')
    assert.equal(r.kind, 'mirror')
    // a mirror without this indexer's head is a miss
    const miss = await readIndexHead('other', { keys: [keyIdOf(key)], sources: [{ kind: 'mirror', url }] }).catch(e => e)
    assert.ok(isSwarmpackError(miss, 'ERR_HEAD_NOT_FOUND'))
    assert.equal((miss.details.sources as Array<{ missed: boolean }>)[0].missed, true)
  })

  it('every wait is bounded: a mirror that never answers times out and the others still win', async () => {
    const sockets = new Set<import('node:net').Socket>()
    const silent: Server = createServer(() => { /* never answers */ })
    silent.on('connection', s => sockets.add(s))
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    closers.push(async () => { for (const s of sockets) s.destroy(); await new Promise<void>(resolve => silent.close(() => { resolve() })) })
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`
    await publishHeadToMirror(join(tmp.dir, 'm5'), heads.get(5)!)
    const started = Date.now()
    const r = await readIndexHead('main', { keys: [keyIdOf(key)], timeoutMs: 4000, sources: [{ kind: 'mirror', url, name: 'silent' }, dir('m5')] })
    assert.equal(r.head.version, 5)
    assert.equal(r.sources.find(s => s.source === 'silent')?.refused[0].code, 'ERR_HEAD_TIMEOUT')
    assert.ok(Date.now() - started < 30_000)
    await assert.rejects(readIndexHead('main', { keys: [keyIdOf(key)], timeoutMs: 1000, sources: [{ kind: 'mirror', url, name: 'silent' }] }), code('ERR_HEAD_NOT_FOUND'))
    await assert.rejects(readIndexHead('main', { keys: [keyIdOf(key)], sources: [{ kind: 'mirror', url: 'ftp://x/' }] }), code('ERR_HEAD_SOURCE'))
  })

  it('when the newest head names an index nobody can supply yet, an older newer-than-accepted head is taken', async () => {
    const v6 = (await buildIndex(key, { indexer: 'main', version: 6, issued: now, expires: now + DAY, entries })).head.bytes // blocks never stored
    await publishHeadToMirror(join(tmp.dir, 'm6'), v6)
    const v = verifier('fallback')
    const r = await followIndexHead(v, 'main', { sources: [dir('m6'), dir('m5')] })
    assert.equal(r.update.version, 5)
    assert.equal(r.head.version, 5)
    assert.equal(r.source, `dir:${join(tmp.dir, 'm5')}`)
    assert.deepEqual(r.passedOver.map(p => [p.version, p.code]), [[6, 'ERR_TRUST_MISSING_BLOCK']])
    await assert.rejects(followIndexHead(v, 'main', { sources: [dir('m6')] }), code('ERR_TRUST_MISSING_BLOCK'))
    assert.equal((await v.state.read('main'))?.version, 5)
  })
})
