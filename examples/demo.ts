/**
 * `npm start`: a local swarm publishes, verifies and installs a package, showing progress and
 * where every byte came from. Everything runs on 127.0.0.1 in temporary directories, which are
 * removed at the end (pass `--keep` to look at them).
 *
 *  1. Five peers start a private swarm (Kademlia DHT + Bitswap 1.2.0); peer-0 is the publisher.
 *  2. The publisher packs a directory into content-defined chunks and signs a release with a key
 *     that holds a delegation from a trust root; an indexer lists it in a signed index.
 *  3. peer-1 follows the index, checks that the release is trusted, fetches the package from the
 *     swarm (every block verified against its CID) and installs it.
 *  4. peer-2..4 install at once: the blocks now come from the publisher and from peer-1 (F5).
 *  5. A new peer with no swarm at all falls back to an HTTP mirror (R4) and installs from there.
 *
 * Every install goes through the resolver's fetcher (createFetcher): the swarm first, the HTTP
 * mirror hedged in when peers are missing or slow, each block verified and stored as it arrives.
 */
import '@swarmpack/core/polyfill'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsBlockstore, pack, storeProvider, unpack, type CID } from '@swarmpack/core'
import { createFetcher, type FetchProgressEvents, type FetchSource } from '@swarmpack/resolver'
import { HttpProvider, startGatewayServer } from '@swarmpack/http-provider'
import {
  IndexView, TrustVerifier, buildIndex, generateSigningKey, issueDelegation, keyIdOf, openIndexHead,
  openIndexRoot, signRelease, type TrustPolicy
} from '@swarmpack/trust'
import { startLocalSwarm, stopSwarm, type LocalPeer } from './local-swarm.js'

const NAME = 'hello-swarm'
const VERSION = '1.0.0'
const INDEXER = 'demo-index'
const DAY = 24 * 3600_000
const keep = process.argv.includes('--keep')
const tty = process.stdout.isTTY === true

const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`
const short = (id: string): string => `${id.slice(0, 6)}…${id.slice(-4)}`
function step (text: string): void { console.log(`\n\x1b[1m${text}\x1b[0m`) }

/**
 * A progress line from the fetcher's events: the total is known up front (manifest blocks
 * included), bytes already in the store count as they are found. Redrawn in place on a terminal,
 * every 25% otherwise.
 */
function progressBar (label: string): { onProgress: (evt: FetchProgressEvents) => void, done: () => void } {
  let bytes = 0
  let total = 0
  let lastQuarter = -1
  const sources = new Set<string>()
  const draw = (): void => {
    const share = total > 0 ? Math.min(1, bytes / total) : 0
    const bar = '#'.repeat(Math.round(share * 30)).padEnd(30, '.')
    const line = `  ${label} [${bar}] ${mib(bytes)} / ${mib(total)} from ${sources.size} source${sources.size === 1 ? '' : 's'}`
    if (tty) process.stdout.write(`\r${line}`)
    else if (Math.floor(share * 4) > lastQuarter) { lastQuarter = Math.floor(share * 4); console.log(line) }
  }
  return {
    onProgress: (evt) => {
      if (evt.type === 'swarmpack:fetch:start') total = evt.detail.totalBytes ?? 0
      if (evt.type !== 'swarmpack:fetch:block') return
      bytes += evt.detail.bytes
      if (!evt.detail.local) sources.add(evt.detail.origin ?? evt.detail.source)
      draw()
    },
    done: () => { if (tty) process.stdout.write('\n') }
  }
}

/** Writes the package the publisher ships: some code, an executable, and 12 MiB of data. */
async function writeSamplePackage (dir: string): Promise<void> {
  await mkdir(join(dir, 'lib'), { recursive: true })
  await mkdir(join(dir, 'bin'), { recursive: true })
  await writeFile(join(dir, 'index.js'), "export function hello (name) { return `hello, ${name}, from the swarm` }\n")
  await writeFile(join(dir, 'README.md'), '# hello-swarm\n\nA package installed from a peer-to-peer swarm.\n')
  await writeFile(join(dir, 'bin', 'hello'), '#!/usr/bin/env node\nimport("../index.js").then(m => console.log(m.hello(process.argv[2] ?? "world")))\n')
  await chmod(join(dir, 'bin', 'hello'), 0o755)
  await writeFile(join(dir, 'lib', 'model.bin'), randomBytes(12 * 1024 * 1024))
}

async function main (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'swarmpack-demo-'))
  let swarm: LocalPeer[] = []
  let lonelyStore: FsBlockstore | undefined
  let gateway: Awaited<ReturnType<typeof startGatewayServer>> | undefined
  try {
    step('1. Five peers start a private swarm on 127.0.0.1 (peer-0 is the publisher)')
    swarm = await startLocalSwarm(5, work)
    for (const p of swarm) console.log(`  ${p.name} ${p.peer.peerId.toString()}`)
    const label = new Map(swarm.map(p => [p.peer.peerId.toString(), p.name]))
    const who = (id: string): string => label.get(id) ?? id

    step(`2. The publisher packs ${NAME}@${VERSION} and signs its release`)
    const src = join(work, 'src')
    await writeSamplePackage(src)
    const publisherStore = swarm[0].store
    const packed = await pack(src, { name: NAME, version: VERSION, description: 'demo package', entry: 'index.js', tags: ['demo'] }, { blockstore: publisherStore })
    await publisherStore.pin(`${NAME}@${VERSION}`, packed.root)
    console.log(`  packed ${mib(packed.totalSize)} into ${packed.blocks} blocks; root ${packed.root.toString()}`)

    // the trust root (configured by the administrator) delegates "hello-*" to the publisher's key
    const now = Date.now()
    const trustRoot = await generateSigningKey()
    const publisherKey = await generateSigningKey()
    const indexerKey = await generateSigningKey()
    const cert = await issueDelegation(trustRoot, { audience: keyIdOf(publisherKey), scope: ['hello-*'], notBefore: now - DAY, expires: now + 365 * DAY })
    const variants = { any: { manifest: packed.root, size: packed.totalSize } }
    const release = await signRelease(publisherKey, { name: NAME, version: VERSION, variants, dependencies: {} }, [cert.bytes])
    const index = await buildIndex(indexerKey, {
      indexer: INDEXER,
      version: 1,
      issued: now,
      expires: now + 7 * DAY,
      entries: new Map([[NAME, new Map([[VERSION, { release: release.cid, size: release.bytes.byteLength, variants, dependencies: {} }]])]])
    })
    // release and index blocks travel through the swarm like any other block
    await publisherStore.put(release.cid, release.bytes)
    for (const block of index.blocks) await publisherStore.put(block.cid, block.bytes)
    await publisherStore.pin(`index:${INDEXER}`, index.index.cid)
    console.log(`  release ${short(release.cid.toString())} signed by ${short(keyIdOf(publisherKey))} (delegated by root ${short(keyIdOf(trustRoot))})`)
    console.log(`  index v1 ${short(index.index.cid.toString())} signed by indexer ${short(keyIdOf(indexerKey))}`)
    await swarm[0].node.announce(packed.root)
    await swarm[0].node.announce(index.index.cid)
    console.log('  the publisher announced the package and the index in the DHT')

    // what every installing peer does: follow the index, check trust, fetch, verify, install
    const policy: TrustPolicy = {
      indexers: [{ id: INDEXER, keys: [keyIdOf(indexerKey)] }],
      indexerThreshold: 1,
      publishers: [{ pattern: '*', roots: [keyIdOf(trustRoot)] }]
    }
    const install = async ({ node, store, name: tag }: LocalPeer): Promise<CID> => {
      // the signed head would come from the DHT or a mirror; it is self-verifying either way
      const head = openIndexHead(index.head.bytes)
      // index blocks are read lazily: from the local store, else from the index's providers
      const fromSwarm = node.provider.forRoot(head.index)
      const getBlock = async (cid: CID): Promise<Uint8Array> => store.has(cid) ? store.getBytes(cid) : fromSwarm.get(cid)
      const verifier = new TrustVerifier({ policy, stateDir: join(work, tag, 'trust'), getBlock })
      await verifier.updateIndexer(INDEXER, index.head.bytes)
      const view = new IndexView(openIndexRoot(await getBlock(head.index)), getBlock)
      const entry = await view.lookup(NAME, VERSION)
      if (entry === undefined || 'removed' in entry) throw new Error(`${NAME}@${VERSION} is not listed`)
      const manifest = entry.variants.any.manifest
      const decision = await verifier.checkInstallable(NAME, VERSION, manifest)
      const bar = progressBar(tag.padEnd(6))
      const fetcher = createFetcher({ blockstore: store, sources: [{ provider: node.provider, kind: 'peer' }, mirrorSource] })
      const result = await fetcher.fetchDag(manifest, { onProgress: bar.onProgress })
      bar.done()
      await node.provider.closeSession(manifest)
      await store.pin(`${NAME}@${VERSION}`, manifest)
      node.announce(manifest).catch(() => {}) // serve it on: the next installs can fetch from this peer too
      const target = join(work, tag, 'installed', NAME)
      await mkdir(join(work, tag, 'installed'), { recursive: true })
      await unpack(manifest, storeProvider(store), target)
      console.log(`  ${tag}: trusted (publisher ${short(decision.publisher)}, indexer ${decision.indexers.join(',')}); ${result.blocks.network} blocks in ${result.ms} ms from ${fromWhom(result.sources)}`)
      return manifest
    }

    // an HTTP mirror of the publisher's store: every installing peer may fall back to it
    gateway = await startGatewayServer({ blockstore: publisherStore })
    const http = new HttpProvider({ mirrors: [gateway.url] })
    const mirrorSource: FetchSource = { provider: http, kind: 'mirror' }
    const fromWhom = (sources: Array<{ source: string, origin?: string, bytes: number }>): string =>
      sources.map(s => `${s.source === 'dht' ? who(s.origin ?? s.source) : `mirror ${s.origin ?? s.source}`} ${mib(s.bytes)}`).join(', ')

    step(`3. peer-1 follows the index, checks the release and installs ${NAME}`)
    await install(swarm[1])

    step('4. peer-2, peer-3 and peer-4 install at once: peer-1 now serves too')
    await Promise.all(swarm.slice(2).map(install))

    step('5. A peer with no swarm falls back to an HTTP mirror')
    lonelyStore = await FsBlockstore.open(join(work, 'peer-E', 'store'), { fsync: false })
    const bar = progressBar('peer-E')
    // the same fetcher; this peer simply has no swarm source
    const lonely = createFetcher({ blockstore: lonelyStore, sources: [mirrorSource] })
    const fallback = await lonely.fetchDag(packed.root, { onProgress: bar.onProgress })
    bar.done()
    await http.close()
    const target = join(work, 'peer-E', 'installed', NAME)
    await mkdir(join(work, 'peer-E', 'installed'), { recursive: true })
    await unpack(packed.root, storeProvider(lonelyStore), target)
    console.log(`  peer-E: ${fallback.blocks.network} blocks in ${fallback.ms} ms from ${fromWhom(fallback.sources)} (${http.stats().requests} HTTP requests over the whole demo)`)

    const greeting = await import(join(target, 'index.js')) as { hello: (n: string) => string }
    const readme = await readFile(join(target, 'README.md'), 'utf8')
    step('Done')
    console.log(`  ${greeting.hello('demo')}  (${readme.split('\n')[0]})`)
    if (keep) console.log(`  files kept in ${work}`)
  } finally {
    await gateway?.close()
    await stopSwarm(swarm).catch(() => {})
    await lonelyStore?.close()
    if (!keep) await rm(work, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(`\ndemo failed: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
  console.error(err)
  process.exit(1)
})
