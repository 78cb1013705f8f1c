/**
 * The `swarmpack` command end to end, as a user runs it: real processes in temporary directories.
 * A "server" data dir publishes and indexes into its mirror directory; a "client" follows that
 * directory and installs, updates, rolls back, uninstalls, collects and verifies. No libp2p here
 * (sharing off: fast); the swarm, `serve` and HTTP are in test/cli-workflow.test.ts.
 * Steps share their state and run in order.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { corruptRawBlock, rawBlocks } from '@swarmpack/core/testing'
import { expectCode, expectJson, ndjson, patchConfig, seeded, start, swarmpack, writePackage } from './helpers.js'

/** The first file of this name under dir. */
async function findFile (dir: string, name: string): Promise<string> {
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === name) return join(e.parentPath, e.name)
  }
  throw new Error(`no ${name} under ${dir}`)
}

const MiB = 1024 * 1024

describe('swarmpack command', { timeout: 900_000 }, () => {
  let dir: string
  let server: string
  let client: string
  let mirror: string
  let indexerKey: string
  const data = seeded(MiB, 7)
  const sp = async (cwd: string, ...args: string[]): ReturnType<typeof swarmpack> => swarmpack(args, { cwd })

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-cli-'))
    server = join(dir, 'server')
    client = join(dir, 'client')
    mirror = join(server, '.swarmpack', 'mirror')
    await writePackage(join(dir, 'pkg-b1'), { name: 'libb', version: '1.0.0', description: 'the library', tags: ['demo'], categories: ['libraries'], entry: 'index.js' }, { 'index.js': 'export const b = 1\n', 'data.bin': data })
    const changed = data.slice()
    changed.set(seeded(MiB / 100, 99), MiB / 2) // 1 % of the bytes change
    await writePackage(join(dir, 'pkg-b2'), { name: 'libb', version: '1.1.0', description: 'the library', tags: ['demo'], entry: 'index.js' }, { 'index.js': 'export const b = 2\n', 'data.bin': changed })
    await writePackage(join(dir, 'pkg-a'), { name: 'appa', version: '1.0.0', dependencies: { libb: '^1.0.0' }, entry: 'index.js' }, { 'index.js': 'export const a = 1\n' })
    await writeFile(join(dir, 'host.mjs'), [
      'import { appendFileSync } from "node:fs"',
      'export async function load (pkg) {',
      `  appendFileSync(${JSON.stringify(join(dir, 'hooks.log'))}, \`load \${pkg.name}@\${pkg.version}\\n\`)`,
      '  if (pkg.name === "libb" && pkg.version === "1.1.0") throw new Error("libb 1.1.0 does not start")',
      '}',
      `export async function unload (pkg) { appendFileSync(${JSON.stringify(join(dir, 'hooks.log'))}, \`unload \${pkg.name}@\${pkg.version}\\n\`) }`
    ].join('\n'))
    await mkdir(server, { recursive: true })
    await mkdir(client, { recursive: true })
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('init writes a commented starter config, and refuses to overwrite it', async () => {
    const r = await sp(server, 'init', '--sharing', 'off', '--json')
    expectCode(r, 0)
    assert.equal(expectJson(r, 'init').config, join(server, 'swarmpack.json'))
    const text = await readFile(join(server, 'swarmpack.json'), 'utf8')
    assert.match(text, /\/\/ Wanted modules/)
    const again = await sp(server, 'init', '--json')
    expectCode(again, 5)
    assert.equal(expectJson(again, 'init', false).code, 'ERR_EXISTS')
    const human = await sp(server, 'init')
    expectCode(human, 5)
    assert.match(human.stderr, /error ERR_EXISTS \(exit 5, conflict\): .*exists\n {2}hint: pass --force/)
    assert.equal(human.stdout, '')
  })

  it('keys: generate, show, export, list; a missing key is not found', async () => {
    const g = await sp(server, 'keys', 'generate', '--json')
    expectCode(g, 0)
    indexerKey = expectJson(g, 'keys generate').id
    assert.match(indexerKey, /^12D3KooW/)
    const mode = (await stat(join(server, '.swarmpack', 'keys', 'default.key'))).mode & 0o777
    assert.equal(mode, 0o600)
    const e = await sp(server, 'keys', 'export')
    expectCode(e, 0)
    assert.equal(e.stdout.trim(), indexerKey)
    const l = await sp(server, 'keys', 'list', '--json')
    assert.deepEqual(expectJson(l, 'keys list').keys.map((k: { id: string }) => k.id), [indexerKey])
    const missing = await sp(server, 'keys', 'show', 'nope', '--json')
    expectCode(missing, 3)
    assert.equal(expectJson(missing, 'keys show', false).code, 'ERR_KEY_NOT_FOUND')
  })

  it('publish packs, signs, indexes and writes the mirror; without a version it is a usage error', async () => {
    const b = await sp(server, 'publish', join(dir, 'pkg-b1'), '--json')
    expectCode(b, 0)
    const rb = expectJson(b, 'publish')
    assert.equal(rb.name, 'libb')
    assert.equal(rb.index.version, 1)
    assert.match(rb.release, /^bafy/)
    const a = await sp(server, 'publish', join(dir, 'pkg-a'))
    expectCode(a, 0)
    assert.match(a.stderr, /index main version 2 signed \(2 releases\)/)
    assert.match(a.stdout.trim(), /^bafy/)
    const card = JSON.parse(await readFile(join(mirror, 'swarmpack-indexer.json'), 'utf8'))
    assert.deepEqual(card.keys, [indexerKey])
    const bad = await sp(server, 'publish', join(dir, 'host.mjs', '..'), '--name', 'x', '--json')
    expectCode(bad, 2)
    assert.equal(expectJson(bad, 'publish', false).class, 'usage')
  })

  it('index list and attest', async () => {
    const l = await sp(server, 'index', 'list', '--json')
    expectCode(l, 0)
    const r = expectJson(l, 'index list')
    assert.deepEqual(r.entries.map((e: { name: string, version: string }) => `${e.name}@${e.version}`).sort(), ['appa@1.0.0', 'libb@1.0.0'])
    const release = r.entries.find((e: { name: string }) => e.name === 'libb').release
    const att = await sp(server, 'attest', release, '--json')
    expectCode(att, 0)
    assert.equal(expectJson(att, 'attest').attestations.length, 1)
    const notCid = await sp(server, 'attest', 'not-a-cid')
    expectCode(notCid, 2)
  })

  it('follow: an unreachable mirror is a network error, a card with another key is refused (trust), the right one is followed', async () => {
    expectCode(await sp(client, 'init', '--sharing', 'off'), 0)
    const down = await sp(client, 'follow', 'http://127.0.0.1:9/', '--json')
    expectCode(down, 6)
    assert.equal(expectJson(down, 'follow', false).class, 'network')
    const wrong = await sp(client, 'follow', mirror, '--key', '12D3KooWRjhsXvGuCtwTgMig44trGR1mwvagWF9Dw1SfN85xNcuE', '--json')
    expectCode(wrong, 4)
    assert.equal(expectJson(wrong, 'follow', false).class, 'trust')
    const r = await sp(client, 'follow', mirror, '--key', indexerKey, '--json')
    expectCode(r, 0)
    const res = expectJson(r, 'follow')
    assert.equal(res.follow[0].version, 2)
    const config = await readFile(join(client, 'swarmpack.json'), 'utf8')
    assert.match(config, /\/\/ Wanted modules/, 'the comments survive the edit')
    assert.ok(config.includes(indexerKey))
  })

  it('search and info answer from the index, with sizes; an unknown name is not found', async () => {
    const s = await sp(client, 'search', '--tag', 'demo', '--json')
    expectCode(s, 0)
    assert.deepEqual(expectJson(s, 'search').hits.map((h: { name: string }) => h.name), ['libb'])
    const i = await sp(client, 'info', 'libb', '--json')
    expectCode(i, 0)
    const info = expectJson(i, 'info')
    assert.equal(info.versions[0].version, '1.0.0')
    assert.ok(info.versions[0].variants[0].size > MiB)
    assert.deepEqual(info.versions[0].categories, ['libraries'])
    const human = await sp(client, 'info', 'libb')
    assert.match(human.stdout, /1\.0\.0 +any 1\.0 MiB/)
    const none = await sp(client, 'info', 'nothere', '--json')
    expectCode(none, 3)
  })

  it('resolve prints the plan and writes nothing unless --write', async () => {
    await patchConfig(join(client, 'swarmpack.json'), [[/"modules": \{\}/, '"modules": { "appa": "^1.0.0" }']])
    const r = await sp(client, 'resolve')
    expectCode(r, 0)
    assert.match(r.stdout, /\+ +appa +1\.0\.0/)
    assert.match(r.stdout, /\+ +libb +1\.0\.0 +1\.0 MiB/)
    await assert.rejects(stat(join(client, 'swarmpack.lock')))
    await assert.rejects(stat(join(client, '.swarmpack', 'generations', '1')))
    const w = await sp(client, 'resolve', '--write', '--json')
    expectCode(w, 0)
    assert.equal(expectJson(w, 'resolve').written, join(client, 'swarmpack.lock'))
    assert.ok(JSON.parse(await readFile(join(client, 'swarmpack.lock'), 'utf8')).packages['libb@1.0.0'])
  })

  it('install: --dry-run changes nothing; the install streams events and says where the bytes came from', async () => {
    const dry = await sp(client, 'install', '--dry-run', '--json')
    expectCode(dry, 0)
    const d = expectJson(dry, 'install')
    assert.equal(d.changed, false)
    assert.equal(d.generation, null)
    const r = await sp(client, 'install', '--json=stream')
    expectCode(r, 0)
    const lines = ndjson(r.stdout)
    assert.ok(lines.every(l => l.schema?.version === 1))
    const types = lines.map(l => l.type === 'event' ? l.event : l.type)
    // one resolve and one plan: events are not doubled when operations call each other
    assert.equal(types.filter(t => t === 'swarmpack:node:resolve').length, 1)
    assert.equal(types.filter(t => t === 'swarmpack:node:plan').length, 1)
    // sizes before the download
    assert.ok(types.indexOf('swarmpack:node:plan') < types.indexOf('swarmpack:node:fetch-start'))
    const progress = lines.filter(l => l.event === 'progress')
    assert.ok(progress.some(p => p.detail.package === 'libb@1.0.0' && p.detail.from.mirrors > 0))
    const result = lines.at(-1)
    assert.equal(result.type, 'result')
    assert.equal(result.ok, true)
    assert.equal(result.result.generation, 1)
    assert.ok(result.result.bytes.mirrors > MiB)
    assert.equal(result.result.bytes.peers, 0)
    const list = await sp(client, 'list', '--json')
    assert.deepEqual(expectJson(list, 'list').packages.map((p: { name: string }) => p.name), ['libb', 'appa'])
    const human = await sp(client, 'install', 'nothere@^1')
    expectCode(human, 5)
    assert.match(human.stderr, /ERR_UNRESOLVABLE .*\n(.*\n)*Because nothere does not exist/)
  })

  it('update fetches only the changed bytes; a failing load hook is rolled back', async () => {
    expectCode(await sp(server, 'publish', join(dir, 'pkg-b2')), 0)
    const failing = await swarmpack(['update', '--host', join(dir, 'host.mjs'), '--json'], { cwd: client })
    expectCode(failing, 1)
    const err = expectJson(failing, 'update', false)
    assert.equal(err.code, 'ERR_APPLY_FAILED')
    assert.match(err.message, /libb 1\.1\.0 does not start/)
    const log = await readFile(join(dir, 'hooks.log'), 'utf8')
    assert.match(log, /unload appa@1\.0\.0\nunload libb@1\.0\.0\nload libb@1\.1\.0\nload libb@1\.0\.0\nload appa@1\.0\.0\n$/)
    const still = await sp(client, 'list', '--json')
    assert.equal(expectJson(still, 'list').packages.find((p: { name: string }) => p.name === 'libb').version, '1.0.0')

    const r = await sp(client, 'update', '--json')
    expectCode(r, 0)
    const u = expectJson(r, 'update')
    assert.equal(u.generation, 2)
    assert.deepEqual(u.plan.changes.filter((c: { action: string }) => c.action === 'replace').map((c: { name: string }) => c.name), ['libb'])
    // about 1 % of 1 MiB changed: the rest of the chunks were already in the store
    assert.ok(u.bytes.network < MiB / 5, `downloaded ${u.bytes.network} bytes for a 1 % change`)
    assert.ok(u.bytes.local > MiB / 2)
  })

  it('generations and rollback; an unknown generation is not found', async () => {
    const g = await sp(client, 'generations', '--json')
    assert.deepEqual(expectJson(g, 'generations').generations.map((x: { number: number, current: boolean }) => `${x.number}${x.current ? '*' : ''}`), ['1', '2*'])
    const r = await sp(client, 'rollback', '--json')
    expectCode(r, 0)
    assert.deepEqual(expectJson(r, 'rollback'), { from: 2, to: 1 })
    const l = await sp(client, 'list', '--json')
    assert.equal(expectJson(l, 'list').packages.find((p: { name: string }) => p.name === 'libb').version, '1.0.0')
    const none = await sp(client, 'rollback', '99')
    expectCode(none, 3)
    assert.match(none.stderr, /ERR_GENERATION_NOT_FOUND/)
  })

  it('uninstall removes a package and what only it needed; a name not in the deployment is a usage error', async () => {
    const r = await sp(client, 'uninstall', 'appa')
    expectCode(r, 0)
    assert.match(r.stderr, /-appa@1\.0\.0 -libb@1\.0\.0/)
    const l = await sp(client, 'list', '--json')
    assert.deepEqual(expectJson(l, 'list').packages, [])
    expectCode(await sp(client, 'uninstall', 'nothere'), 2)
    // the lock written for the old config is stale now
    const frozen = await sp(client, 'install', '--frozen', '--json')
    expectCode(frozen, 5)
    assert.equal(expectJson(frozen, 'install', false).code, 'ERR_LOCK_STALE')
  })

  it('mirror export, gc (dry run, then for real) and verify', async () => {
    const out = join(dir, 'exported')
    const m = await sp(client, 'mirror', 'export', out, '--json')
    expectCode(m, 0)
    const me = expectJson(m, 'mirror export')
    assert.ok(me.blocks > 10)
    assert.deepEqual(me.heads, ['main'])
    assert.ok((await stat(join(out, 'indexes', 'main', 'head'))).size > 0)

    const dry = await sp(client, 'gc', '--dry-run', '--keep', '1', '--json')
    expectCode(dry, 0)
    const preview = expectJson(dry, 'gc')
    assert.deepEqual(preview.removedGenerations, [1, 2])
    assert.ok(preview.blocks.total.blocks > 0 && preview.blocks.total.bytes > 0, JSON.stringify(preview.blocks))
    const dryHuman = await sp(client, 'gc', '--dry-run', '--keep', '1')
    expectCode(dryHuman, 0)
    assert.match(dryHuman.stdout, /would free\s+\d+ blocks/)
    assert.equal((await readdir(join(client, '.swarmpack', 'generations'))).filter(n => /^\d+$/.test(n)).length, 3)
    const gc = await sp(client, 'gc', '--keep', '1', '--json')
    expectCode(gc, 0)
    const done = expectJson(gc, 'gc')
    // the dry run said exactly what would go
    assert.equal(done.removedBlocks, preview.blocks.total.blocks)
    assert.equal(done.freedBytes, preview.blocks.total.bytes)

    const v = await sp(client, 'verify', '--json')
    expectCode(v, 0)
    const clean = expectJson(v, 'verify')
    assert.equal(clean.ok, true)
    assert.ok(clean.store.checked > 0, JSON.stringify(clean.store))
    // flip a byte of the biggest block in the client's LMDB store (no process has it open now):
    // verify finds it, removes it, fetches it again from the followed mirror, and exits with the I/O class
    const raw = await rawBlocks(join(client, '.swarmpack', 'store'))
    const [key] = [...raw].sort((a, b) => b[1].byteLength - a[1].byteLength)[0]
    await corruptRawBlock(join(client, '.swarmpack', 'store'), key)
    const bad = await sp(client, 'verify', '--json')
    expectCode(bad, 7)
    const err = expectJson(bad, 'verify', false)
    assert.equal(err.code, 'ERR_BLOCK_CORRUPT')
    const rawKey = (c: string): string => CID.createV1(0x55, CID.parse(c).multihash).toString()
    assert.deepEqual(err.details.report.store.corrupt.map((c: { cid: string }) => rawKey(c.cid)), [key])
    assert.deepEqual(err.details.report.store.refetched.map(rawKey), [key])
    expectCode(await sp(client, 'verify'), 0)
  })

  it('status, doctor and scrub; without a config, not found', async () => {
    const s = await sp(client, 'status', '--json')
    expectCode(s, 0)
    const st = expectJson(s, 'status')
    assert.equal(st.indexers[0].version, 3)
    assert.equal(st.indexers[0].source !== undefined, true, JSON.stringify(st.indexers))
    assert.equal(st.generation, 3)
    assert.ok(st.cache.blocks > 0 && st.cache.pinnedBytes > 0, JSON.stringify(st.cache))
    const human = await sp(client, 'status')
    expectCode(human, 0)
    assert.match(human.stdout, /indexers\s+main v3/)
    const d = await sp(client, 'doctor', '--json')
    expectCode(d, 0)
    const report = expectJson(d, 'doctor')
    assert.equal(report.ok, true, JSON.stringify(report.findings))
    assert.ok(report.findings.some((f: { check: string, status: string }) => f.check === 'store' && f.status === 'ok'), JSON.stringify(report.findings))
    const dh = await sp(client, 'doctor')
    expectCode(dh, 0)
    assert.match(dh.stdout, /^ok +store: /m)
    const sc = await sp(client, 'scrub', '--json')
    expectCode(sc, 0)
    assert.equal(expectJson(sc, 'scrub').ok, true)
    expectCode(await sp(client, 'doctor', '--timeout', 'soon'), 2)
    const none = await sp(dir, 'doctor', '--json')
    expectCode(none, 3)
    assert.equal(expectJson(none, 'doctor', false).code, 'ERR_CONFIG_NOT_FOUND')
    const noConfig = await sp(dir, 'list')
    expectCode(noConfig, 3)
    assert.match(noConfig.stderr, /hint: run `swarmpack init`/)
  })

  it('usage errors exit 2, as JSON too; --help exits 0', async () => {
    const u = await sp(client, 'bogus')
    expectCode(u, 2)
    assert.match(u.stderr, /unknown command 'bogus'/)
    const j = await sp(client, 'install', '--bogus', '--json')
    expectCode(j, 2)
    assert.equal(expectJson(j, 'install', false).code, 'ERR_USAGE')
    const h = await sp(client, '--help')
    expectCode(h, 0)
    assert.match(h.stdout, /Exit codes: 0 ok/)
  })

  it('update --watch reports and applies updates through the node\'s watcher until interrupted', async () => {
    expectCode(await sp(client, 'update', 'libb', '--watch'), 2)
    await patchConfig(join(client, 'swarmpack.json'), [[/"modules": \{\}/, '"modules": { "libb": "^1.0.0" }']])
    const w = await start(['update', '--watch', '--interval', '1', '--json=stream'], { cwd: client, until: l => l.event === 'update:applied' })
    assert.equal(w.first.detail.generation, 4)
    assert.deepEqual(w.first.detail.changes.map((c: { name: string, action: string }) => `${c.action} ${c.name}`), ['add libb'])
    const available = w.lines.find(l => l.event === 'update:available')
    assert.equal(available?.detail.decision, 'apply')
    assert.equal(await w.stop(), 0)
    const result = w.lines.find(l => l.type === 'result')
    assert.ok(result !== undefined, JSON.stringify(w.lines.slice(-3)))
    assert.equal(result.result.watch, true)
    assert.equal(result.result.policy, 'apply')
  })

  it('verify: an installed file changed on disk is reported; --repair restores it', async () => {
    const file = await findFile(join(client, '.swarmpack'), 'data.bin')
    const original = await readFile(file)
    await writeFile(file, 'not the package any more')
    const changed = await sp(client, 'verify', '--json')
    expectCode(changed, 7)
    const err = expectJson(changed, 'verify', false)
    assert.equal(err.code, 'ERR_FILE_MODIFIED')
    assert.equal(err.details.report.installed.findings[0].restored, false)
    const repaired = await sp(client, 'verify', '--repair', '--json')
    expectCode(repaired, 7)
    assert.equal(expectJson(repaired, 'verify', false).details.report.installed.findings[0].restored, true)
    assert.deepEqual(await readFile(file), original)
    expectCode(await sp(client, 'verify'), 0)
  })

  it('index publish and remove; serve with sharing off and a bad --limit are usage errors', async () => {
    const p = await sp(server, 'index', 'publish', '--json')
    expectCode(p, 0)
    const version = expectJson(p, 'index publish').version
    const r = await sp(server, 'index', 'remove', 'appa@1.0.0', '--reason', 'withdrawn', '--json')
    expectCode(r, 0)
    assert.equal(expectJson(r, 'index remove').index.version, version + 1)
    const l = await sp(server, 'index', 'list', '--json')
    assert.equal(expectJson(l, 'index list').entries.find((e: { name: string }) => e.name === 'appa').removed, true)
    expectCode(await sp(server, 'index', 'remove', 'nothere@1.0.0'), 2)
    const s = await sp(client, 'serve', '--json')
    expectCode(s, 2)
    assert.match(expectJson(s, 'serve', false).message, /sharing is "off"/)
    expectCode(await sp(client, 'search', '--limit', 'many'), 2)
  })
})
