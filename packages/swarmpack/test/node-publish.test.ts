import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateSigningKey, issueDelegation, keyIdOf } from '@swarmpack/trust'
import { createSwarmpack, type Swarmpack } from '../src/index.js'

const DAY = 24 * 3600_000

describe('node: publish, index, attest, search and info through node methods', () => {
  let dir: string
  const nodes: Swarmpack[] = []
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'swarmpack-node-pub-')) })
  after(async () => {
    for (const n of nodes) await n.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  it('a publishing node feeds a following node through a mirror directory', async () => {
    const root = await generateSigningKey()
    const publisherKey = await generateSigningKey()
    const indexerKey = await generateSigningKey()
    const rebuilder = await generateSigningKey()
    const now = Date.now()
    const cert = await issueDelegation(root, { audience: keyIdOf(publisherKey), scope: ['tool*'], notBefore: now - DAY, expires: now + 30 * DAY })
    const mirrorDir = join(dir, 'mirror')

    const pub = await createSwarmpack({ dataDir: join(dir, 'pub'), config: { sharing: 'off' } })
    nodes.push(pub)
    const indexer = await pub.indexer({ key: indexerKey, indexer: 'acme', mirrorDir })
    const src = join(dir, 'src')
    await mkdir(src, { recursive: true })
    await writeFile(join(src, 'main.js'), 'export default 42\n')
    const published = await pub.publish(src, { name: 'toolkit', version: '1.2.0', description: 'a small toolkit', tags: ['cli'], entry: 'main.js' }, { key: publisherKey, certs: [cert.bytes], indexer })
    assert.equal(published.index?.version, 1)
    assert.ok(pub.store.pins().some(p => p.name === 'published:toolkit@1.2.0:release'))
    const attestations = await pub.attest(published.release.bytes, { key: rebuilder })
    await indexer.close()

    const follower = await createSwarmpack({
      dataDir: join(dir, 'follower'),
      config: {
        sharing: 'off',
        modules: { toolkit: '^1' },
        indexers: [{ id: 'acme', keys: [keyIdOf(indexerKey)] }],
        trust: {
          publishers: [{ pattern: 'tool*', roots: [keyIdOf(root)] }],
          attesters: [{ id: 'rebuilder', keys: [keyIdOf(rebuilder)] }],
          attestations: [{ pattern: 'toolkit', threshold: 1 }]
        },
        sources: { directories: [{ path: mirrorDir }] }
      },
      attestations: async (name, version, manifest) => attestations.filter(a => a.manifest.equals(manifest)).map(a => a.bytes)
    })
    nodes.push(follower)
    assert.equal(follower.followed[0].version, 1)
    const hits = await follower.search({ text: 'toolkit' })
    assert.deepEqual(hits.map(h => `${h.name}@${h.latest}`), ['toolkit@1.2.0'])
    const info = await follower.info('toolkit')
    assert.equal(info.versions[0].description, 'a small toolkit')
    const r = await follower.apply()
    assert.equal(r.generation, 1)
    const g = await follower.current()
    assert.equal(await readFile(join(g!.packages.toolkit.path, 'main.js'), 'utf8'), 'export default 42\n')
  })
})
