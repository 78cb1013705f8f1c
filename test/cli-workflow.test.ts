/**
 * The distpac workflow with the `swarmpack` command, as users run it, all in separate processes
 * on 127.0.0.1: a server publishes two packages and runs `swarmpack serve` (a peer plus its mirror
 * directory and a gateway over HTTP); clients `follow` its URL, `install name@range` (sizes shown
 * before the download), `uninstall`; then the server goes away and an nginx mirror of its
 * directory keeps serving.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { NGINX, startNginx, type TestNginx } from '../packages/http-provider/test/helpers/nginx.js'
import { expectCode, expectJson, patchConfig, seeded, start, swarmpack, writePackage } from '../packages/cli/test/helpers.js'

const MiB = 1024 * 1024

describe('the distpac workflow with the swarmpack command', { timeout: 600_000 }, () => {
  let dir: string
  let serverKey: string
  let serve: Awaited<ReturnType<typeof start>> | undefined
  let nginx: TestNginx | undefined
  const server = (): string => join(dir, 'server')

  /** init + a loopback network (one machine), as an administrator would edit the file. */
  const initNode = async (cwd: string): Promise<void> => {
    await mkdir(cwd, { recursive: true })
    expectCode(await swarmpack(['init'], { cwd }), 0)
    await patchConfig(join(cwd, 'swarmpack.json'), [
      [/"mode": "internet"/, '"mode": "loopback"'],
      [/\/\/ "listen": \["\/ip4\/0\.0\.0\.0\/tcp\/4001"\],/, '"listen": ["/ip4/127.0.0.1/tcp/0"],']
    ])
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmpack-cli-workflow-'))
    await writePackage(join(dir, 'greet'), { name: 'greet', version: '1.0.0', description: 'says hello', entry: 'index.js' }, { 'index.js': 'export const hello = n => `hello ${n}`\n', 'words.bin': seeded(2 * MiB, 3) })
    await writePackage(join(dir, 'hello'), { name: 'hello', version: '1.2.0', dependencies: { greet: '^1.0.0' }, entry: 'index.js' }, { 'index.js': 'export { hello } from "greet"\n', 'data.bin': seeded(MiB, 4) })
  })

  after(async () => {
    if (serve !== undefined) await serve.stop().catch(() => {})
    await nginx?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('server: publish two packages, then serve them as a peer and over HTTP', async () => {
    await initNode(server())
    const k = await swarmpack(['keys', 'generate', '--json'], { cwd: server() })
    serverKey = expectJson(k, 'keys generate').id
    expectCode(await swarmpack(['publish', join(dir, 'greet')], { cwd: server() }), 0)
    const p = await swarmpack(['publish', join(dir, 'hello'), '--json'], { cwd: server() })
    expectCode(p, 0)
    assert.equal(expectJson(p, 'publish').index.version, 2)
    serve = await start(['serve', '--http', '0', '--gateway', '--json=stream'], { cwd: server(), until: l => l.event === 'ready' })
    const ready = serve.first.detail
    assert.match(ready.http, /^http:\/\/127\.0\.0\.1:\d+\/$/)
    assert.equal(ready.indexer.version, 2)
    assert.ok(ready.addresses.some((a: string) => a.includes('/p2p/')))
    const card = await (await fetch(`${String(ready.http)}swarmpack-indexer.json`)).json() as { keys: string[], peers: string[] }
    assert.deepEqual(card.keys, [serverKey])
    assert.ok(card.peers.length > 0, 'the card names the serving peer')
  })

  it('client: follow the server, install with sizes shown first, uninstall', async () => {
    const client = join(dir, 'client-1')
    await initNode(client)
    const url = serve?.first.detail.http as string
    const f = await swarmpack(['follow', url, '--key', serverKey], { cwd: client })
    expectCode(f, 0)
    assert.match(f.stderr, /follow main: index version 2/)
    const r = await swarmpack(['install', 'hello@^1'], { cwd: client })
    expectCode(r, 0)
    const err = r.stderr
    const plan = err.indexOf('plan: 2 to add')
    assert.ok(plan >= 0, err)
    assert.match(err, /\+ greet@1\.0\.0 {2}2\.0 MiB/)
    assert.ok(plan < err.indexOf('fetched greet@1.0.0'), 'the sizes come before the download')
    assert.match(err, /generation 1: \+greet@1\.0\.0 \+hello@1\.2\.0/)
    assert.match(err, /3\.0 MiB downloaded; .* from peers \(\d+%\), .* from mirrors \(\d+%\)/)
    const u = await swarmpack(['uninstall', 'hello', '--json'], { cwd: client })
    expectCode(u, 0)
    assert.deepEqual(expectJson(u, 'uninstall').plan.changes.map((c: { action: string, name: string }) => `${c.action} ${c.name}`), ['remove greet', 'remove hello'])
  })

  it('a second client gets the bytes from the serving peer', async () => {
    const client = join(dir, 'client-2')
    await initNode(client)
    expectCode(await swarmpack(['follow', serve?.first.detail.http as string, '--key', serverKey], { cwd: client }), 0)
    const r = await swarmpack(['install', 'hello@^1.2', '--json'], { cwd: client })
    expectCode(r, 0)
    const res = expectJson(r, 'install')
    assert.equal(res.bytes.network, res.bytes.peers + res.bytes.mirrors)
    assert.ok(res.bytes.network > 3 * MiB - 1)
    assert.ok(res.bytes.peers > 0, `peers served ${res.bytes.peers} bytes, mirrors ${res.bytes.mirrors}`)
  })

  it('the server stops; an nginx mirror of its directory serves a new client', { skip: NGINX === undefined ? 'nginx is not installed' : false }, async () => {
    assert.equal(await serve?.stop(), 0)
    const last = serve?.lines.at(-1)
    assert.equal(last.type, 'result')
    assert.equal(last.result.stopped, true)
    serve = undefined
    nginx = await startNginx(join(server(), '.swarmpack', 'mirror')) as TestNginx
    const client = join(dir, 'client-3')
    await initNode(client)
    // nginx serves blocks and heads, not the card: the indexer is configured by hand
    const f = await swarmpack(['follow', 'main', '--key', serverKey, '--publisher-root', serverKey, '--mirror', nginx.url], { cwd: client })
    expectCode(f, 0)
    const r = await swarmpack(['install', 'hello@^1', '--json'], { cwd: client })
    expectCode(r, 0)
    const res = expectJson(r, 'install')
    assert.equal(res.bytes.peers, 0)
    assert.ok(res.bytes.mirrors > 3 * MiB - 1)
  })
})
