/**
 * `npm start`: swarmpack end to end on the node API, in well under a minute, on 127.0.0.1 in a
 * temporary directory (removed at the end; `--keep` keeps it).
 *
 *  1. A publisher signs `greet` and `hello` (hello depends on greet ^1) and lists them in its index.
 *  2. Two hosts follow the index through the swarm and install hello: its dependency comes too,
 *     every byte from peers, and the modules are loaded dependencies first.
 *  3. greet 1.1.0 changes 1 % of its data: the update fetches only the changed chunks.
 *  4. hello 1.3.0 fails to start: the update is rolled back and 1.2.0 keeps running.
 *  5. The peers are gone: a new host installs from the publisher's static HTTP mirror.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  KeyStore, createSwarmpack, startMirrorServer,
  type DeploymentConfigInput, type HookPackage, type NodeProgressEvents, type Swarmpack
} from 'swarmpack'

const keep = process.argv.includes('--keep')
const MiB = 1024 * 1024
const mib = (n: number): string => `${(n / MiB).toFixed(2)} MiB`
const step = (text: string): void => { console.log(`\n\x1b[1m${text}\x1b[0m`) }
const names = new Map<string, string>()
const who = (id: string): string => names.get(id) ?? id

/** A host: loads a module by importing its entry and calling start(); unloads with stop(). */
function hostFor (tag: string): { load: (p: HookPackage) => Promise<void>, unload: (p: HookPackage) => Promise<void> } {
  const running = new Map<string, { stop?: () => void }>()
  return {
    load: async (p) => {
      const mod = await import(pathToFileURL(p.entry!).href) as { start: (who: string) => void, stop?: () => void }
      mod.start(tag)
      running.set(p.name, mod)
    },
    unload: async (p) => { running.get(p.name)?.stop?.(); running.delete(p.name) }
  }
}

/** One line per package fetched: how many bytes, from whom. */
function report (tag: string) {
  return (evt: NodeProgressEvents): void => {
    if (evt.type !== 'swarmpack:node:fetched') return
    const d = evt.detail as { name: string, version: string, bytes: { network: number, local: number }, sources: Array<{ origin?: string, source: string, kind: string, bytes: number }> }
    const from = d.sources.map(s => `${s.kind === 'peer' ? who(s.origin ?? s.source) : s.origin ?? s.source} ${mib(s.bytes)}`).join(', ')
    console.log(`  ${tag}: ${d.name}@${d.version} ${mib(d.bytes.network)} downloaded${from !== '' ? ` from ${from}` : ''}, ${mib(d.bytes.local)} already here`)
  }
}

async function writePackage (dir: string, version: string, start: string, data: Uint8Array): Promise<string> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'index.mjs'), `export function start (host) { ${start} }\nexport function stop () {}\n`)
  await writeFile(join(dir, 'data.bin'), data)
  return dir
}

async function main (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'swarmpack-demo-'))
  const nodes: Swarmpack[] = []
  let mirrorServer: Awaited<ReturnType<typeof startMirrorServer>> | undefined
  const t0 = Date.now()
  try {
    step('1. The publisher signs greet and hello (hello needs greet ^1) and lists them in its index')
    const keys = KeyStore.of(join(work, 'publisher'))
    const key = await keys.load('default').catch(async () => { await keys.generate('default'); return keys.load('default') })
    const keyId = (await keys.info('default')).id
    const loopback = { mode: 'loopback' as const, listen: ['/ip4/127.0.0.1/tcp/0'] }
    const publisher = await createSwarmpack({ dataDir: join(work, 'publisher'), config: { network: loopback, sharing: 'share' }, followOnStart: false })
    nodes.push(publisher)
    names.set(publisher.peer!.peerId.toString(), 'publisher')
    const boot = publisher.peer!.multiaddrs().map(String)
    const follows: DeploymentConfigInput = {
      indexers: [{ id: 'demo', keys: [keyId] }],
      trust: { publishers: [{ pattern: '*', roots: [keyId] }] },
      network: loopback,
      sources: { bootstrap: boot }
    }
    const host = async (tag: string, modules: Record<string, string>): Promise<Swarmpack> => {
      const n = await createSwarmpack({ dataDir: join(work, tag), config: { ...follows, modules }, host: hostFor(tag), followOnStart: false, onProgress: report(tag) })
      nodes.push(n)
      names.set(n.peer!.peerId.toString(), tag)
      await n.peer!.waitForRoutingTable(1, { timeout: 20_000 })
      return n
    }
    // the hosts join first, so the index head put into the DHT has peers to land on
    const [hostA, hostB] = await Promise.all([host('host-a', { hello: '^1.0.0' }), host('host-b', { hello: '^1.0.0' })])
    const mirrorDir = join(work, 'mirror')
    const indexer = await publisher.indexer({ key, indexer: 'demo', mirrorDir })
    const greetData = randomBytes(4 * MiB)
    const greet = await publisher.publish(await writePackage(join(work, 'src', 'greet-1.0.0'), '1.0.0', 'console.log(`    [${host}] greet 1.0.0 started`)', greetData),
      { name: 'greet', version: '1.0.0', entry: 'index.mjs', description: 'says hello' }, { key, indexer })
    const hello = await publisher.publish(await writePackage(join(work, 'src', 'hello-1.2.0'), '1.2.0', 'console.log(`    [${host}] hello 1.2.0 started`)', randomBytes(MiB)),
      { name: 'hello', version: '1.2.0', entry: 'index.mjs', dependencies: { greet: '^1.0.0' } }, { key, indexer })
    console.log(`  greet@1.0.0 ${mib(greet.variants[0].size)}, hello@1.2.0 ${mib(hello.variants[0].size)}; index version ${hello.index?.version} signed by ${keyId.slice(0, 14)}…`)

    step('2. Two hosts follow the index through the swarm and install hello (greet comes with it)')
    await publisher.announceInstalled()
    await hostA.follow()
    let r = await hostA.install({})
    console.log(`  host-a: generation ${r.generation}, ${mib(r.bytes.network)} from the network`)
    await hostA.announceInstalled()
    await hostB.follow()
    r = await hostB.install({})
    console.log(`  host-b: generation ${r.generation}, ${mib(r.bytes.network)} from the network (from the publisher and host-a)`)

    step('3. greet 1.1.0 changes 1 % of its data: the update fetches only the changed chunks')
    const changed = Buffer.from(greetData)
    randomBytes(greetData.length / 100).copy(changed, greetData.length / 2)
    await publisher.publish(await writePackage(join(work, 'src', 'greet-1.1.0'), '1.1.0', 'console.log(`    [${host}] greet 1.1.0 started`)', changed),
      { name: 'greet', version: '1.1.0', entry: 'index.mjs' }, { key, indexer })
    await publisher.announceInstalled()
    r = await hostA.update()
    console.log(`  host-a: generation ${r.generation}: ${mib(r.bytes.network)} downloaded for a ${mib(changed.length)} package that changed 1 %; the rest was already here`)

    step('4. hello 1.3.0 fails to start: the update is rolled back, 1.2.0 keeps running')
    await publisher.publish(await writePackage(join(work, 'src', 'hello-1.3.0'), '1.3.0', 'throw new Error("hello 1.3.0: missing configuration")', randomBytes(MiB)),
      { name: 'hello', version: '1.3.0', entry: 'index.mjs', dependencies: { greet: '^1.1.0' } }, { key, indexer })
    await publisher.announceInstalled()
    try {
      await hostA.update()
    } catch (err) {
      console.log(`  host-a: ${(err as { code?: string }).code}: ${(err as Error).message.split(':').slice(0, 2).join(':')}`)
    }
    const now = await hostA.current()
    console.log(`  host-a runs generation ${now?.number}: ${Object.values(now?.packages ?? {}).map(p => `${p.name}@${p.version}`).join(', ')}`)

    step('5. The peers are gone: a new host installs from the publisher\'s static HTTP mirror')
    await indexer.close()
    for (const n of nodes.splice(0)) await n.stop()
    mirrorServer = await startMirrorServer({ dir: mirrorDir })
    const lonely = await createSwarmpack({
      dataDir: join(work, 'host-c'),
      config: { ...follows, sources: { mirrors: [{ url: mirrorServer.url }] }, sharing: 'off', modules: { hello: '~1.2.0' } },
      host: hostFor('host-c'),
      onProgress: report('host-c')
    })
    nodes.push(lonely)
    r = await lonely.install({})
    console.log(`  host-c: generation ${r.generation} from ${mirrorServer.url}`)

    step(`Done in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    if (keep) console.log(`  files kept in ${work}`)
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    await mirrorServer?.close()
    if (!keep) await rm(work, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(`\ndemo failed: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
  console.error(err)
  process.exit(1)
})
