/**
 * Automatic updates through the swarm alone: the indexer's heads travel only in the DHT and the
 * blocks only from peers. A follower with policy `apply` re-reads the head from the DHT on its
 * interval and applies the new version the indexer published.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateSigningKey, issueDelegation, keyIdOf } from '@swarmpack/trust'
import { createSwarmpack, type Swarmpack } from '../src/index.js'
import { collect, waitFor } from './helpers/ops.js'

const DAY = 24 * 3600_000

describe('ops: automatic updates from DHT heads and peers only', () => {
  let dir: string
  const nodes: Swarmpack[] = []
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'swarmpack-ops-dht-')) })
  after(async () => {
    for (const n of nodes.reverse()) await n.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  it('a follower applies the version an indexer publishes into the DHT, within its interval', async () => {
    const root = await generateSigningKey()
    const publisherKey = await generateSigningKey()
    const indexerKey = await generateSigningKey()
    const cert = await issueDelegation(root, { audience: keyIdOf(publisherKey), scope: ['*'], notBefore: Date.now() - DAY, expires: Date.now() + 30 * DAY })

    const pub = await createSwarmpack({ dataDir: join(dir, 'pub'), config: { sharing: 'share', network: { mode: 'loopback' } } })
    nodes.push(pub)
    const follower = await createSwarmpack({
      dataDir: join(dir, 'follower'),
      followOnStart: false,
      config: {
        sharing: 'share',
        network: { mode: 'loopback' },
        modules: { toolkit: '^1.0.0' },
        indexers: [{ id: 'acme', keys: [keyIdOf(indexerKey)], heads: { dht: true } }],
        trust: { publishers: [{ pattern: '*', roots: [keyIdOf(root)] }] },
        sources: { bootstrap: (pub.peer?.multiaddrs() ?? []).map(String), policy: 'peers-only' },
        updates: { policy: 'apply', intervalMs: 300 }
      }
    })
    nodes.push(follower)
    await follower.peer?.waitForRoutingTable(1, { timeout: 60_000, refreshEvery: 5000 })
    await pub.peer?.waitForRoutingTable(1, { timeout: 60_000, refreshEvery: 5000 })

    const indexer = await pub.indexer({ key: indexerKey, indexer: 'acme' })
    const release = async (version: string): Promise<void> => {
      const src = join(dir, `src-${version}`)
      await mkdir(src, { recursive: true })
      await writeFile(join(src, 'main.js'), `export default '${version}'\n`)
      const r = await pub.publish(src, { name: 'toolkit', version, entry: 'main.js' }, { key: publisherKey, certs: [cert.bytes], indexer })
      assert.ok(r.index?.dht !== undefined && !('error' in r.index.dht), `head ${r.index?.version} put into the DHT: ${JSON.stringify(r.index?.dht)}`)
      await pub.announceInstalled()
    }
    const applied = collect(follower.events, 'update:applied')
    await release('1.0.0')
    // nothing installed yet: with policy apply the first update installs the deployment
    const diagnose = async (err: unknown): Promise<never> => {
      const s = await follower.status()
      throw new Error(`${(err as Error).message}; follower errors: ${JSON.stringify(s.errors.slice(0, 4))}; routing tables ${follower.peer?.routingTableSize()}/${pub.peer?.routingTableSize()}`)
    }
    const first = await waitFor(() => applied[0], 'the follower to install 1.0.0 from the swarm', 120_000).catch(diagnose)
    assert.deepEqual(first.changes.map((c: any) => `${c.action} ${c.name} ${c.to?.version}`), ['add toolkit 1.0.0'])

    await release('1.1.0')
    const second = await waitFor(() => applied[1], 'the follower to apply 1.1.0 from the DHT head', 120_000).catch(diagnose)
    assert.deepEqual(second.changes.map((c: any) => `${c.action} ${c.name} ${c.to?.version}`), ['replace toolkit 1.1.0'])
    const g = await follower.current()
    assert.equal(await readFile(join(g!.packages.toolkit.path, 'main.js'), 'utf8'), "export default '1.1.0'\n")
    const s = await follower.status()
    assert.equal(s.indexers[0].version, 2)
    assert.match(s.indexers[0].source ?? '', /dht/)
    assert.ok(s.packages[0].lastFetch?.sources.every(x => x.kind === 'peer'), JSON.stringify(s.packages[0].lastFetch))
    await indexer.close()
  })
})
