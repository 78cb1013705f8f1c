/**
 * publish → indexer → attest, end to end on real files and a real loopback swarm: a publisher
 * holding a delegation packs two platform variants and signs the release; the indexer lists it,
 * signs version 1, writes a mirror directory and puts the head into the DHT; an attester signs
 * the manifests; a follower reads the head from the DHT, fetches the index from the mirror and
 * trust says the package may be installed. The indexer restarts and continues at version 2.
 */
import '@swarmpack/core/polyfill'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FsBlockstore, FsProvider, isSwarmpackError } from '@swarmpack/core'
import type { SwarmpackPeer } from '@swarmpack/dht-provider'
import { TrustVerifier, generateSigningKey, issueDelegation, keyIdOf, type Ed25519PrivateKey, type TrustPolicy } from '@swarmpack/trust'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { attest, createIndexer, followIndexHead, publish, type Indexer } from '../src/index.js'
import { DAY, startSwarm, stopSwarm, tempDir } from './publish-helpers.js'

const code = (c: string) => (e: unknown): boolean => { assert.ok(isSwarmpackError(e, c), `expected ${c}, got ${(e as { code?: string }).code}: ${(e as Error).message}`); return true }

async function writePackage (dir: string, files: Record<string, string>): Promise<string> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true })
    await writeFile(join(dir, path), text)
  }
  return dir
}

describe('publish, index, attest', { timeout: 240_000 }, () => {
  let tmp: { dir: string, remove: () => Promise<void> }
  let peers: SwarmpackPeer[]
  let store: FsBlockstore
  let root: Ed25519PrivateKey
  let publisher: Ed25519PrivateKey
  let indexerKey: Ed25519PrivateKey
  let attester: Ed25519PrivateKey
  let certs: Uint8Array[]
  let indexer: Indexer
  let policy: TrustPolicy
  const now = Date.now()
  const mirrorDir = (): string => join(tmp.dir, 'mirror')
  const openIndexer = async (): Promise<Indexer> => createIndexer({
    key: indexerKey, blockstore: store, stateDir: join(tmp.dir, 'indexer'), indexer: 'acme-index', dht: peers[1].dht, mirrorDir: mirrorDir(),
    publishers: [{ pattern: '@acme/*', roots: [keyIdOf(root)] }]
  })
  const follower = (name: string): TrustVerifier => new TrustVerifier({
    policy, stateDir: join(tmp.dir, 'followers', name), getBlock: async cid => new FsProvider(mirrorDir()).get(cid)
  })

  before(async () => {
    tmp = await tempDir('publish')
    store = await FsBlockstore.open(join(tmp.dir, 'store'), { fsync: false })
    root = await generateSigningKey()
    publisher = await generateSigningKey()
    indexerKey = await generateSigningKey()
    attester = await generateSigningKey()
    certs = [(await issueDelegation(root, { audience: keyIdOf(publisher), scope: ['@acme/*'], notBefore: now - DAY, expires: now + 30 * DAY })).bytes]
    policy = {
      indexers: [{ id: 'acme-index', keys: [keyIdOf(indexerKey)] }],
      indexerThreshold: 1,
      publishers: [{ pattern: '@acme/*', roots: [keyIdOf(root)] }],
      attesters: [{ id: 'rebuilder', keys: [keyIdOf(attester)] }],
      attestations: [{ pattern: '@acme/*', threshold: 1, kinds: ['rebuilt'] }]
    }
    peers = await startSwarm(3)
    indexer = await openIndexer()
  })
  after(async () => {
    await indexer?.close()
    await stopSwarm(peers ?? [])
    await store?.close()
    await tmp?.remove()
  })

  it('publishes a two-variant release, indexes it (mirror + DHT), attests it, and a follower may install it', async () => {
    const linux = await writePackage(join(tmp.dir, 'src', 'linux'), { 'bin/tool': 'linux build\n', 'README.md': 'tool\n' })
    const mac = await writePackage(join(tmp.dir, 'src', 'mac'), { 'bin/tool': 'darwin build, a bit longer\n', 'README.md': 'tool\n' })
    const events: string[] = []
    const r = await publish([{ dir: linux, platform: 'linux-x64' }, { dir: mac, platform: 'darwin-arm64' }], {
      name: '@acme/tool', version: '1.0.0', description: 'A tool for acme', categories: ['devtools'], tags: ['cli', 'build'], dependencies: {}
    }, { key: publisher, certs, blockstore: store, indexer, onProgress: e => events.push(e.type) })
    assert.deepEqual(r.variants.map(v => v.key), ['linux-x64', 'darwin-arm64'])
    assert.equal(r.indexed?.added, true)
    assert.equal(r.index?.version, 1)
    assert.equal(r.index?.releases, 1)
    assert.ok(r.index?.mirror !== undefined && 'blocks' in r.index.mirror, JSON.stringify(r.index?.mirror))
    assert.ok(r.index?.dht !== undefined && 'stored' in r.index.dht, JSON.stringify(r.index?.dht))
    assert.ok(events.includes('swarmpack:publish:release') && events.includes('swarmpack:pack:manifest'))
    // the mirror holds the head file, the index and the packages
    const mirror = await FsProvider.open(mirrorDir())
    assert.deepEqual([...await mirror.getIndexHead('acme-index')], [...r.index.head])
    for (const v of r.variants) assert.equal(await mirror.has(v.manifest), true)

    const attestations = await attest(r.release.bytes, { key: attester })
    assert.equal(attestations.length, 2)

    const v = follower('a')
    const followed = await followIndexHead(v, 'acme-index', { sources: [{ kind: 'dht', dht: peers[2].dht }] })
    assert.equal(followed.update.version, 1)
    assert.equal(followed.kind, 'dht')
    const decision = await v.checkInstallable('@acme/tool', '1.0.0', r.variants[1].manifest, { attestations: attestations.map(a => a.bytes) })
    assert.equal(decision.variant, 'darwin-arm64')
    assert.deepEqual(decision.attesters, ['rebuilder'])
    assert.deepEqual(decision.indexers, ['acme-index'])
    // without the attestation the policy refuses
    await assert.rejects(v.checkInstallable('@acme/tool', '1.0.0', r.variants[0].manifest), code('ERR_TRUST_THRESHOLD'))
  })

  it('the indexer restarts and continues at the next version; followers accept it (nothing dropped)', async () => {
    await indexer.close()
    await assert.rejects(indexer.publish(), code('ERR_INDEXER_CLOSED'))
    indexer = await openIndexer()
    assert.equal(indexer.version, 1)
    const lib = await writePackage(join(tmp.dir, 'src', 'lib'), { 'index.js': 'export const x = 1\n' })
    const r = await publish(lib, { name: '@acme/lib', version: '2.1.0', dependencies: { '@acme/tool': '^1.0.0' } }, { key: publisher, certs, blockstore: store, indexer })
    assert.equal(r.variants[0].key, 'any')
    assert.equal(r.index?.version, 2)
    assert.equal(r.index?.releases, 2)
    const v = follower('b')
    const first = await followIndexHead(v, 'acme-index', { sources: [{ kind: 'dir', path: mirrorDir() }, { kind: 'dht', dht: peers[0].dht }] })
    assert.equal(first.update.version, 2)
    // the state file is private and no temp file was left behind
    const files = await readdir(join(tmp.dir, 'indexer'))
    assert.deepEqual(files, ['indexer-acme-index.state'])
    assert.equal((await stat(join(tmp.dir, 'indexer', files[0]))).mode & 0o777, 0o600)
    // a follower of version 1 moves to 2 through trust's drop check
    const a = follower('a')
    const moved = await followIndexHead(a, 'acme-index', { sources: [{ kind: 'dir', path: mirrorDir() }] })
    assert.equal(moved.update.previous, 1)
    assert.equal(moved.update.version, 2)
  })

  it('refuses conflicts, releases without a delegation chain and bad input with typed errors', async () => {
    const again = await writePackage(join(tmp.dir, 'src', 'other'), { 'x.txt': 'other contents\n' })
    const other = await publish(again, { name: '@acme/tool', version: '1.0.0' }, { key: publisher, certs, blockstore: store })
    await assert.rejects(indexer.add(other.release.bytes), code('ERR_INDEX_CONFLICT'))
    const stranger = await generateSigningKey()
    const unsigned = await publish(again, { name: '@acme/evil', version: '1.0.0' }, { key: stranger, blockstore: store })
    await assert.rejects(indexer.add(unsigned.release.bytes), code('ERR_TRUST_NO_CHAIN'))
    const outside = await publish(again, { name: 'lodash', version: '1.0.0' }, { key: publisher, certs, blockstore: store })
    await assert.rejects(indexer.add(outside.release.bytes), code('ERR_TRUST_SCOPE'))
    const rsa = await generateKeyPair('RSA', 1024)
    await assert.rejects(publish(again, { name: '@acme/x', version: '1.0.0' }, { key: rsa as unknown as Ed25519PrivateKey, blockstore: store }), code('ERR_PUBLISH_INVALID'))
    await assert.rejects(publish([{ dir: again, platform: 'linux-x64' }, { dir: again, platform: 'linux-x64' }], { name: '@acme/x', version: '1.0.0' }, { key: publisher, blockstore: store }), code('ERR_PUBLISH_INVALID'))
    await assert.rejects(publish(again, { name: '@acme/x', version: '1.0.0', platform: 'Linux X64' }, { key: publisher, blockstore: store }), code('ERR_PUBLISH_INVALID'))
    await assert.rejects(publish(again, { name: '@acme/x', version: 'one' }, { key: publisher, blockstore: store }), code('ERR_INVALID_VERSION'))
    await assert.rejects(attest(other.release.bytes, { key: attester, manifests: [unsigned.variants[0].manifest] }), code('ERR_TRUST_MISMATCH'))
    await assert.rejects(createIndexer({ key: await generateSigningKey(), blockstore: store, stateDir: join(tmp.dir, 'indexer'), indexer: 'acme-index' }), code('ERR_INDEXER_STATE'))
    assert.equal(indexer.version, 2, 'nothing was published by the refusals')
    assert.equal(indexer.entries().length, 2)
  })

  it('a removed release becomes a tombstone: followers no longer install it and may not see it dropped', async () => {
    await indexer.remove('@acme/lib', '2.1.0', 'withdrawn by the publisher')
    const published = await indexer.publish()
    assert.equal(published.version, 3)
    assert.equal(published.releases, 1)
    const v = follower('a')
    await followIndexHead(v, 'acme-index', { sources: [{ kind: 'dht', dht: peers[2].dht }] })
    await assert.rejects(v.checkInstallable('@acme/lib', '2.1.0', published.index), code('ERR_TRUST_NOT_LISTED'))
    const lib = await writePackage(join(tmp.dir, 'src', 'lib'), { 'index.js': 'export const x = 1\n' })
    const re = await publish(lib, { name: '@acme/lib', version: '2.1.0' }, { key: publisher, certs, blockstore: store })
    await assert.rejects(indexer.add(re.release.bytes), code('ERR_INDEX_CONFLICT'))
  })

  it('a second process on the same indexer state is refused before it can fork the versions', async () => {
    const other = await openIndexer()
    assert.equal(other.version, indexer.version)
    const dir = await writePackage(join(tmp.dir, 'src', 'race'), { 'r.txt': 'race\n' })
    const r = await publish(dir, { name: '@acme/race', version: '1.0.0' }, { key: publisher, certs, blockstore: store })
    const before = indexer.version
    await indexer.add(r.release.bytes)
    await indexer.publish()
    await assert.rejects(other.publish(), code('ERR_INDEXER_STATE'))
    await assert.rejects(other.add(r.release.bytes), code('ERR_INDEXER_STATE'))
    assert.equal(other.version, before, 'the refused instance signed nothing')
    assert.equal(other.entries().some(e => e.name === '@acme/race'), false, 'and its refused add was undone')
    await other.close()
    const reopened = await openIndexer()
    assert.equal(reopened.version, before + 1)
    await reopened.close()
  })
})
