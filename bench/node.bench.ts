/**
 * The node end to end: install a deployment of 20 packages (100 MiB together, with dependencies
 * between them) from a 5-peer swarm and from nginx, against curl fetching the same bytes as 20
 * tar files from the same nginx and extracting them with tar, in the same run. Then an update
 * with 1.5 % of the bytes changed (every package gets a new version): bytes fetched vs the
 * deployment. Medians of RUNS runs; load average at start and end.
 *
 *   flock /work/coord/bench.lock npm run bench -- node    (SWARMPACK_BENCH_MIB=100 SWARMPACK_BENCH_RUNS=3)
 */
import { spawnSync } from 'node:child_process'
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportHttpMirror } from '@swarmpack/http-provider'
import { createSwarmpack, type DeploymentConfigInput } from 'swarmpack'
import type { CID } from 'multiformats/cid'
import { NGINX, startNginx } from '../packages/http-provider/test/helpers/nginx.js'
import { TestPublisher, seededBytes } from '../packages/swarmpack/test/helpers/publisher.js'
import { ChildPeer, ROOT, stopAll } from '../test/helpers/swarm.js'

const MIB = 1024 * 1024
const TOTAL_MIB = Number(process.env.SWARMPACK_BENCH_MIB ?? 100)
const RUNS = Number(process.env.SWARMPACK_BENCH_RUNS ?? 3)
const COUNT = 20
const PEERS = 5
const SCRIPT = join(ROOT, 'test/fixtures/swarmpack-node.ts')
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const load = (): string => loadavg().map(x => x.toFixed(1)).join(' ')
const name = (i: number): string => `pkg-${String(i).padStart(2, '0')}`
/** pkg-i depends on pkg-floor((i-1)/2): a tree of dependencies, every package reachable from the deployment. */
const deps = (i: number): Record<string, string> => i === 0 ? {} : { [name(Math.floor((i - 1) / 2))]: '^1' }

async function main (): Promise<void> {
  if (NGINX === undefined) { console.log('nginx is not installed (apt-get install -y nginx-light): skipping'); return }
  const loadStart = load()
  const tmp = await mkdtemp(join(tmpdir(), 'swarmpack-bench-node-'))
  const children: ChildPeer[] = []
  let nginx: Awaited<ReturnType<typeof startNginx>>
  try {
    // -- the publisher: 20 packages, 1.0.0; tars of the same trees for the baseline --------------
    const pub = await TestPublisher.create(join(tmp, 'publisher'))
    const per = Math.floor(TOTAL_MIB * MIB / COUNT)
    const data = Array.from({ length: COUNT }, (_, i) => seededBytes(per, 1000 + i))
    const manifests: CID[] = []
    for (let i = 0; i < COUNT; i++) {
      const p = await pub.publish({ name: name(i), version: '1.0.0', dependencies: deps(i), entry: 'index.js', files: { 'index.js': `export const n = ${i}\n`, 'data.bin': data[i] } })
      manifests.push(p.manifests.any)
    }
    await pub.publishIndex()
    await exportHttpMirror(pub.store, manifests, pub.mirrorDir, { cars: true, fsync: false })
    // the tars sit where the mirror's nginx config serves plain files (`ipfs/<alphanumeric>`), as http.bench does
    const tarName = (i: number): string => `tar${name(i).replace('-', '')}`
    for (let i = 0; i < COUNT; i++) {
      const r = spawnSync('tar', ['-cf', join(pub.mirrorDir, 'ipfs', tarName(i)), '-C', join(pub.dir, 'src', `${name(i)}@1.0.0`), '.'])
      if (r.status !== 0) throw new Error(`tar failed: ${r.stderr.toString()}`)
    }
    nginx = await startNginx(pub.mirrorDir)
    if (nginx === undefined) return
    const modules = Object.fromEntries(Array.from({ length: COUNT }, (_, i) => [name(i), '^1.0.0']))
    const headsOnly = { indexers: [{ ...pub.trustConfig().indexers[0], heads: { directories: [pub.mirrorDir] } }] }
    const config = (extra: Partial<DeploymentConfigInput>): DeploymentConfigInput => ({ ...pub.trustConfig(), modules, network: { mode: 'loopback' }, ...extra })

    // -- the swarm: one seed installs from the mirror directory, copied to 5 data dirs (fresh peer keys)
    const seedConf = join(tmp, 'seed.json')
    await writeFile(seedConf, JSON.stringify(config({ sources: { directories: [{ path: pub.mirrorDir }] }, sharing: 'off' })))
    const seedDir = join(tmp, 'seed')
    const seeding = new ChildPeer('seed', SCRIPT, [seedDir, seedConf, 'apply'])
    if (await seeding.exited !== 0) throw new Error(`seeding failed: ${seeding.stderr.join('\n')}`)
    const peerConf = join(tmp, 'peer.json')
    await writeFile(peerConf, JSON.stringify(config({ ...headsOnly, sources: { directories: [{ path: pub.mirrorDir }] } })))
    const peers: ChildPeer[] = []
    for (let i = 0; i < PEERS; i++) {
      const dir = join(tmp, `peer-${i}`)
      await cp(seedDir, dir, { recursive: true, verbatimSymlinks: true })
      await rm(join(dir, 'peer.key'), { force: true })
      // peers 1-4 join the DHT through peer 0, so announcements have somewhere to go
      let conf = peerConf
      if (i > 0) {
        conf = join(tmp, `peer-${i}.json`)
        await writeFile(conf, JSON.stringify(config({ ...headsOnly, sources: { directories: [{ path: pub.mirrorDir }], bootstrap: peers[0].multiaddrs } })))
      }
      const c = new ChildPeer(`peer-${i}`, SCRIPT, [dir, conf, 'serve'])
      children.push(c)
      peers.push(await c.ready())
    }
    // the measured node bootstraps from all five; each announces what it holds first
    const bootstrap = peers.flatMap(p => p.multiaddrs)
    for (const p of peers) await p.command('announce', 'announced', 300_000)

    // -- the runs ---------------------------------------------------------------------------------
    const rows: Record<string, number[]> = { swarm: [], nginx: [], curl: [] }
    const fetched: Record<string, number[]> = { swarm: [], nginx: [] }
    for (let run = 0; run < RUNS; run++) {
      for (const kind of ['swarm', 'nginx'] as const) {
        const dataDir = join(tmp, `node-${kind}-${run}`)
        const node = await createSwarmpack({
          dataDir,
          config: kind === 'swarm'
            ? config({ ...headsOnly, sources: { bootstrap, policy: 'peers-only' } })
            : config({ sources: { mirrors: [{ url: nginx.url }], policy: 'mirrors-only' }, sharing: 'off' })
        })
        const t0 = performance.now()
        const r = await node.apply()
        rows[kind].push(performance.now() - t0)
        fetched[kind].push(r.bytes.network)
        await node.stop()
        await rm(dataDir, { recursive: true, force: true })
      }
      const out = join(tmp, `curl-${run}`)
      await mkdir(out, { recursive: true })
      const t0 = performance.now()
      const urls = Array.from({ length: COUNT }, (_, i) => `${nginx!.url}ipfs/${tarName(i)}`)
      const c = spawnSync('curl', ['-sS', '--fail', ...urls.flatMap((u, i) => ['-o', join(out, `${i}.tar`), u])])
      if (c.status !== 0) throw new Error(`curl failed: ${c.stderr.toString()}`)
      for (let i = 0; i < COUNT; i++) {
        await mkdir(join(out, name(i)))
        const x = spawnSync('tar', ['-xf', join(out, `${i}.tar`), '-C', join(out, name(i))])
        if (x.status !== 0) throw new Error('tar -x failed')
      }
      rows.curl.push(performance.now() - t0)
      await rm(out, { recursive: true, force: true })
    }

    // -- update: 1.5 % of the bytes changed, spread over every package ---------------------------
    const node = await createSwarmpack({ dataDir: join(tmp, 'node-update'), config: config({ sources: { mirrors: [{ url: nginx.url }], policy: 'mirrors-only' }, sharing: 'off' }) })
    await node.apply()
    const changed = Math.floor(per * 0.015)
    const newManifests: CID[] = []
    for (let i = 0; i < COUNT; i++) {
      const d = data[i].slice()
      const at = Math.floor(per / 3)
      for (let j = at; j < at + changed; j++) d[j] ^= 0xa5
      const p = await pub.publish({ name: name(i), version: '1.1.0', dependencies: deps(i), entry: 'index.js', files: { 'index.js': `export const n = ${i}\n`, 'data.bin': d } })
      newManifests.push(p.manifests.any)
    }
    await pub.publishIndex()
    await exportHttpMirror(pub.store, newManifests, pub.mirrorDir, { cars: true, fsync: false })
    const t0 = performance.now()
    const up = await node.update()
    const updateMs = performance.now() - t0
    await node.stop()

    const mib = (b: number): string => (b / MIB).toFixed(1)
    const curl = median(rows.curl)
    console.log(`\nnode: install ${COUNT} packages, ${TOTAL_MIB} MiB, ${RUNS} runs (medians); load average ${loadStart} -> ${load()}`)
    console.log('| case | ms | MiB/s | vs curl+tar | fetched MiB |')
    console.log('|---|---|---|---|---|')
    for (const kind of ['swarm', 'nginx'] as const) {
      const ms = median(rows[kind])
      console.log(`| install from ${kind === 'swarm' ? `a ${PEERS}-peer swarm` : 'nginx'} | ${ms.toFixed(0)} | ${(TOTAL_MIB / (ms / 1000)).toFixed(1)} | ${(ms / curl).toFixed(2)}x | ${mib(median(fetched[kind]))} |`)
    }
    console.log(`| baseline: curl 20 tars + tar -x | ${curl.toFixed(0)} | ${(TOTAL_MIB / (curl / 1000)).toFixed(1)} | 1.00x | ${TOTAL_MIB} |`)
    const total = COUNT * per
    console.log(`| update, 1.5 % of bytes changed (20 new versions), from nginx | ${updateMs.toFixed(0)} | | | ${mib(up.bytes.network)} = ${(100 * up.bytes.network / total).toFixed(2)} % of the deployment (target <= 3 %) |`)
  } finally {
    await stopAll(children)
    await nginx?.close()
    await rm(tmp, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
