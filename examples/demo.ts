/**
 * `npm start`: swarmpack nodes publish, verify and install a package, showing progress and where
 * every byte came from. Everything runs on 127.0.0.1 in temporary directories, which are removed
 * at the end (pass `--keep` to look at them).
 *
 *  1. A publishing node starts (peer-0): it packs a directory, signs a release with a key that
 *     holds a delegation from a trust root, and its indexer lists it in a signed index whose head
 *     goes into the DHT and into a static mirror directory.
 *  2. peer-1 follows the index, resolves its deployment, checks that the release is trusted,
 *     fetches the package from the swarm (every block verified) and installs it as generation 1;
 *     the host's load hook sees it.
 *  3. peer-2..4 install at once: the blocks now come from the publisher and from peer-1 (F5).
 *  4. A node with no swarm at all installs from the mirror directory (R4).
 */
import '@swarmpack/core/polyfill'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateSigningKey, issueDelegation, keyIdOf } from '@swarmpack/trust'
import { createSwarmpack, type DeploymentConfigInput, type NodeProgressEvents, type Swarmpack } from 'swarmpack'

const NAME = 'hello-swarm'
const VERSION = '1.0.0'
const INDEXER = 'demo-index'
const DAY = 24 * 3600_000
const keep = process.argv.includes('--keep')
const tty = process.stdout.isTTY === true

const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`
const short = (id: string): string => `${id.slice(0, 6)}…${id.slice(-4)}`
function step (text: string): void { console.log(`\n\x1b[1m${text}\x1b[0m`) }

/** A progress line per node: redrawn in place on a terminal, every 25% otherwise. */
function progressBar (label: string): { onProgress: (evt: NodeProgressEvents) => void, done: () => void } {
  let bytes = 0
  let total = 0
  let lastQuarter = -1
  const draw = (): void => {
    const share = total > 0 ? Math.min(1, bytes / total) : 0
    const line = `  ${label} [${'#'.repeat(Math.round(share * 30)).padEnd(30, '.')}] ${mib(bytes)} / ${mib(total)}`
    if (tty) process.stdout.write(`\r${line}`)
    else if (Math.floor(share * 4) > lastQuarter) { lastQuarter = Math.floor(share * 4); console.log(line) }
  }
  return {
    onProgress: (evt) => {
      if (evt.type === 'swarmpack:node:fetch-start') total += evt.detail.size
      if (evt.type === 'swarmpack:fetch:block' && evt.detail.local !== true) { bytes += evt.detail.bytes; draw() }
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
  const nodes: Swarmpack[] = []
  try {
    step('1. A publishing node packs, signs and indexes the package')
    const trustRoot = await generateSigningKey()
    const publisherKey = await generateSigningKey()
    const indexerKey = await generateSigningKey()
    const now = Date.now()
    const cert = await issueDelegation(trustRoot, { audience: keyIdOf(publisherKey), scope: ['hello-*'], notBefore: now - DAY, expires: now + 365 * DAY })
    const mirrorDir = join(work, 'mirror')
    const publisher = await createSwarmpack({ dataDir: join(work, 'peer-0'), config: { network: { mode: 'loopback' } } })
    nodes.push(publisher)
    const indexer = await publisher.indexer({ key: indexerKey, indexer: INDEXER, mirrorDir })
    const src = join(work, 'src')
    await writeSamplePackage(src)
    const published = await publisher.publish(src, { name: NAME, version: VERSION, description: 'demo package', entry: 'index.js', tags: ['demo'] }, { key: publisherKey, certs: [cert.bytes], indexer })
    await indexer.close()
    console.log(`  peer-0 ${publisher.peer?.peerId.toString()}`)
    console.log(`  packed ${mib(published.variants[0].size)}; release ${short(published.release.cid.toString())} signed by ${short(keyIdOf(publisherKey))} (delegated by root ${short(keyIdOf(trustRoot))})`)
    console.log(`  index v${published.index?.version ?? '?'} signed by indexer ${short(keyIdOf(indexerKey))}; head in the DHT and in ${mirrorDir}`)

    // what every installing node is configured with: whom to trust, which index to follow, what to install
    const deployment = (extra: Partial<DeploymentConfigInput>): DeploymentConfigInput => ({
      modules: { [NAME]: '^1.0.0' },
      indexers: [{ id: INDEXER, keys: [keyIdOf(indexerKey)], heads: { directories: [mirrorDir] } }],
      trust: { publishers: [{ pattern: 'hello-*', roots: [keyIdOf(trustRoot)] }] },
      network: { mode: 'loopback' },
      ...extra
    })
    const boot = publisher.peer?.multiaddrs().map(String) ?? []
    const label = new Map([[publisher.peer?.peerId.toString() ?? '', 'peer-0']])
    const who = (id: string): string => label.get(id) ?? short(id)
    const install = async (name: string, node: Swarmpack): Promise<void> => {
      const bar = progressBar(name.padEnd(6))
      const served = new Map<string, number>()
      const result = await node.apply(undefined, {
        onProgress: (evt) => {
          bar.onProgress(evt)
          if (evt.type === 'swarmpack:node:fetched') for (const s of evt.detail.sources) served.set(s.origin ?? s.source, (served.get(s.origin ?? s.source) ?? 0) + s.bytes)
        }
      })
      bar.done()
      await node.announceInstalled()
      const from = [...served].filter(([, b]) => b > 0).map(([s, b]) => `${who(s)} ${mib(b)}`).join(', ')
      console.log(`  ${name}: generation ${result.generation}, ${mib(result.bytes.network)} fetched from ${from}`)
    }
    const loaded: string[] = []
    const host = { load: (pkg: { name: string, version: string, entry?: string }) => { loaded.push(`${pkg.name}@${pkg.version} (${pkg.entry ?? 'no entry'})`) } }

    step(`2. peer-1 follows the index, checks the release and installs ${NAME} from the swarm`)
    const peer1 = await createSwarmpack({ dataDir: join(work, 'peer-1'), config: deployment({ sources: { bootstrap: boot, policy: 'peers-only' } }), host })
    nodes.push(peer1)
    label.set(peer1.peer?.peerId.toString() ?? '', 'peer-1')
    await install('peer-1', peer1)
    console.log(`  the host's load hook saw ${loaded.join(', ')}`)

    step('3. peer-2, peer-3 and peer-4 install at once: peer-1 now serves too')
    const more = await Promise.all([2, 3, 4].map(async i => {
      const n = await createSwarmpack({ dataDir: join(work, `peer-${i}`), config: deployment({ sources: { bootstrap: boot, policy: 'peers-only' } }) })
      nodes.push(n)
      label.set(n.peer?.peerId.toString() ?? '', `peer-${i}`)
      return n
    }))
    await Promise.all(more.map(async (n, i) => install(`peer-${i + 2}`, n)))

    step('4. A node with no swarm installs from the mirror directory')
    const lonely = await createSwarmpack({ dataDir: join(work, 'peer-E'), config: deployment({ sharing: 'off', sources: { directories: [{ path: mirrorDir }] } }) })
    nodes.push(lonely)
    await install('peer-E', lonely)

    const g = await lonely.current()
    const pkg = g?.packages[NAME]
    if (pkg === undefined) throw new Error('not installed')
    const greeting = await import(join(pkg.path, 'index.js')) as { hello: (n: string) => string }
    const readme = await readFile(join(pkg.path, 'README.md'), 'utf8')
    step('Done')
    console.log(`  ${greeting.hello('demo')}  (${readme.split('\n')[0]}, installed in ${pkg.path})`)
    if (keep) console.log(`  files kept in ${work}`)
  } finally {
    for (const n of nodes.reverse()) await n.stop().catch(() => {})
    if (!keep) await rm(work, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(`\ndemo failed: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
  console.error(err)
  process.exit(1)
})
