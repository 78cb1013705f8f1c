/**
 * Search and info over followed indexes, answered from the index entries alone: the block getter
 * counts every fetch, and neither a manifest nor a release is ever read; info reads one shard per
 * index, search walks the shards. Real indexer output (createIndexer over a real block store,
 * mirror directory), read back through trust.
 */
import '@swarmpack/core/polyfill'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FsBlockstore, FsProvider, isSwarmpackError } from '@swarmpack/core'
import { TrustVerifier, generateSigningKey, keyIdOf, type Ed25519PrivateKey } from '@swarmpack/trust'
import type { CID } from 'multiformats/cid'
import { catalogFromVerifier, createCatalog, createIndexer, followIndexHead, publish, type Catalog, type Indexer, type PublishResult } from '../src/index.js'
import { tempDir } from './publish-helpers.js'

const code = (c: string) => (e: unknown): boolean => { assert.ok(isSwarmpackError(e, c), `expected ${c}, got ${(e as { code?: string }).code}: ${(e as Error).message}`); return true }

describe('catalog: search and info without fetching manifests', { timeout: 120_000 }, () => {
  let tmp: { dir: string, remove: () => Promise<void> }
  let store: FsBlockstore
  let publisher: Ed25519PrivateKey
  let main: Indexer
  let extra: Indexer
  const fetched: string[] = []
  const packageBlocks = new Set<string>()
  const releases: PublishResult[] = []
  let mainIndex: CID
  let extraIndex: CID

  const getBlock = async (cid: CID): Promise<Uint8Array> => {
    fetched.push(cid.toString())
    return new FsProvider(join(tmp.dir, 'mirror-main')).get(cid).catch(async () => new FsProvider(join(tmp.dir, 'mirror-extra')).get(cid))
  }
  const noPackageBlocks = (): void => {
    const touched = fetched.filter(c => packageBlocks.has(c))
    assert.deepEqual(touched, [], 'no manifest or release block was fetched')
  }

  before(async () => {
    tmp = await tempDir('catalog')
    store = await FsBlockstore.open(join(tmp.dir, 'store'), { fsync: false })
    publisher = await generateSigningKey()
    main = await createIndexer({ key: await generateSigningKey(), blockstore: store, stateDir: join(tmp.dir, 'state-main'), indexer: 'main', mirrorDir: join(tmp.dir, 'mirror-main'), shards: 4 })
    extra = await createIndexer({ key: await generateSigningKey(), blockstore: store, stateDir: join(tmp.dir, 'state-extra'), indexer: 'extra', mirrorDir: join(tmp.dir, 'mirror-extra') })
    const pkgs = [
      { name: 'http-server', version: '1.0.0', description: 'A small static HTTP server', categories: ['network'], tags: ['http', 'server'] },
      { name: 'http-server', version: '1.2.0', description: 'A small static HTTP server with TLS', categories: ['network'], tags: ['http', 'server', 'tls'] },
      { name: 'http-server', version: '2.0.0-beta.1', description: 'Next major, unstable', categories: ['network'], tags: ['http'] },
      { name: 'json-tools', version: '0.3.0', description: 'Parse and pretty-print JSON', categories: ['text'], tags: ['json', 'cli'] },
      { name: '@acme/logger', version: '3.1.4', description: 'Structured logging for servers', categories: ['devtools'], tags: ['logging'], dependencies: { 'json-tools': '^0.3.0' } },
      { name: 'gpu-miner', version: '1.0.0', categories: ['compute'], tags: ['gpu'] }
    ]
    for (const [i, p] of pkgs.entries()) {
      const dir = join(tmp.dir, 'src', String(i))
      await mkdir(dir, { recursive: true })
      await writeFile(join(dir, 'main.js'), `// ${p.name} ${p.version}\n`.repeat(10 + i))
      const r = await publish(p.name === 'gpu-miner' ? [{ dir, platform: 'linux-x64' }, { dir, platform: 'linux-x64', variant: 'cuda' }] : dir, p, { key: publisher, blockstore: store })
      releases.push(r)
      await main.add(r.release.bytes)
      if (p.name === 'json-tools') await extra.add(r.release.bytes)
      packageBlocks.add(r.release.cid.toString())
      for (const v of r.variants) packageBlocks.add(v.manifest.toString())
    }
    await main.remove('http-server', '1.0.0', 'security issue')
    mainIndex = (await main.publish()).index
    extraIndex = (await extra.publish()).index
  })
  after(async () => {
    await main?.close()
    await extra?.close()
    await store?.close()
    await tmp?.remove()
  })

  it('info shows versions, variants, sizes and dependencies from one shard per index', async () => {
    const catalog = createCatalog({ indexes: [{ indexer: 'main', index: mainIndex }, { indexer: 'extra', index: extraIndex }], getBlock })
    fetched.length = 0
    const info = await catalog.info('gpu-miner')
    assert.equal(info.latest, '1.0.0')
    assert.deepEqual(info.versions[0].variants.map(v => v.key), ['linux-x64', 'linux-x64+cuda'])
    assert.ok(info.versions[0].variants.every(v => v.size > 0))
    assert.ok(info.versions[0].variants[0].manifest.equals(releases[5].variants[0].manifest))
    assert.deepEqual(info.indexers, ['main'])
    assert.equal(fetched.length, 4, 'two index roots and one shard from each index')
    noPackageBlocks()

    const logger = await catalog.info('@acme/logger')
    assert.deepEqual(logger.versions[0].dependencies, { 'json-tools': '^0.3.0' })
    assert.equal(logger.versions[0].description, 'Structured logging for servers')
    const http = await catalog.info('http-server')
    assert.deepEqual(http.versions.map(v => v.version), ['2.0.0-beta.1', '1.2.0', '1.0.0'])
    assert.equal(http.latest, '1.2.0')
    assert.equal(http.versions[2].removed, 'security issue')
    const json = await catalog.info('json-tools')
    assert.deepEqual(json.versions[0].indexers, ['main', 'extra'])
    await assert.rejects(catalog.info('nothing-here'), code('ERR_CATALOG_NOT_FOUND'))
    noPackageBlocks()
  })

  it('search by text, category and tag answers from the index alone', async () => {
    const catalog = createCatalog({ indexes: [{ indexer: 'main', index: mainIndex }, { indexer: 'extra', index: extraIndex }], getBlock })
    fetched.length = 0
    const byText = await catalog.search({ text: 'http server' })
    assert.deepEqual(byText.map(h => h.name), ['http-server'])
    assert.equal(byText[0].latest, '1.2.0')
    assert.deepEqual(byText[0].tags, ['http', 'server', 'tls'])
    assert.deepEqual(byText[0].versions, ['2.0.0-beta.1', '1.2.0'], 'the removed version is not offered')
    assert.equal((await catalog.search({ text: 'http', prerelease: true }))[0].latest, '2.0.0-beta.1')
    assert.deepEqual((await catalog.search({ text: 'servers' })).map(h => h.name), ['@acme/logger'], 'description words match')
    assert.deepEqual((await catalog.search({ category: 'Network' })).map(h => h.name), ['http-server'])
    assert.deepEqual((await catalog.search({ tag: 'json' })).map(h => h.name), ['json-tools'])
    assert.deepEqual((await catalog.search({ tag: 'json' }))[0].indexers, ['main', 'extra'])
    assert.deepEqual((await catalog.search({ tag: 'gpu', category: 'text' })).map(h => h.name), [])
    assert.equal((await catalog.search({})).length, 4, 'everything listed')
    assert.equal((await catalog.search({ limit: 2 })).length, 2)
    assert.deepEqual((await catalog.search({ text: 'logger' })).map(h => h.name), ['@acme/logger'])
    await assert.rejects(catalog.search({ limit: 0 }), code('ERR_CATALOG_QUERY'))
    await assert.rejects(catalog.search({ text: 'x'.repeat(300) }), code('ERR_CATALOG_QUERY'))
    noPackageBlocks()
    // 2 roots + 4 + 1 shards, each read once (verified shards are cached by the views)
    assert.equal(new Set(fetched).size, 7)
  })

  it('the catalog of what a verifier follows, after reading the heads from the mirrors', async () => {
    const policy = { indexers: [{ id: 'main', keys: [main.keyId] }, { id: 'extra', keys: [extra.keyId] }, { id: 'never', keys: [keyIdOf(await generateSigningKey())] }], indexerThreshold: 1, publishers: [] }
    const verifier = new TrustVerifier({ policy, stateDir: join(tmp.dir, 'follower'), getBlock })
    await followIndexHead(verifier, 'main', { sources: [{ kind: 'dir', path: join(tmp.dir, 'mirror-main') }] })
    await followIndexHead(verifier, 'extra', { sources: [{ kind: 'dir', path: join(tmp.dir, 'mirror-extra') }] })
    fetched.length = 0
    const catalog: Catalog = await catalogFromVerifier(verifier, getBlock)
    assert.deepEqual(catalog.indexers, ['main', 'extra'])
    assert.deepEqual((await catalog.search({ tag: 'logging' })).map(h => h.name), ['@acme/logger'])
    noPackageBlocks()
  })
})
