import assert from 'node:assert/strict'
import { readFile, readlink, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isSwarmpackError } from '@swarmpack/core'
import { generateSigningKey } from '@swarmpack/trust'
import { LOCKFILE_NAME, SwarmpackNodeErrorCode, parseLock, serializeLock } from '../src/index.js'
import { seededBytes } from './helpers/publisher.js'
import { World, deploymentState } from './helpers/world.js'

describe('node: install, update, hooks, trust', () => {
  let w: World
  before(async () => {
    w = await World.create()
    await w.publish('b', '1.0.0')
    await w.publish('a', '1.0.0', { b: '^1' }, seededBytes(512 * 1024, 11))
    await w.pub.publishIndex()
  })
  after(async () => { await w.close() })

  it('installs A with its dependency B, loading B before A', async () => {
    const node = await w.node('n1', { a: '^1.0.0' })
    const lock = await node.resolve()
    assert.deepEqual(Object.keys(lock.packages).sort(), ['a@1.0.0', 'b@1.0.0'])
    assert.deepEqual(lock.packages['a@1.0.0'].resolved, { b: '1.0.0' })
    // resolve writes nothing
    await assert.rejects(stat(join(node.dataDir, LOCKFILE_NAME)))
    const plan = await node.plan(lock)
    assert.deepEqual(plan.changes.map(c => `${c.action} ${c.name}`), ['add a', 'add b'])
    assert.deepEqual(plan.load, ['b', 'a'])
    assert.ok(plan.bytes.fetch > 512 * 1024, `bytes to fetch known before fetching: ${plan.bytes.fetch}`)
    const events: string[] = []
    const result = await node.apply(plan, { onProgress: (evt) => { if (evt.type.startsWith('swarmpack:node:')) events.push(`${evt.type.slice(15)}${evt.detail?.name !== undefined ? ` ${evt.detail.name}` : ''}${evt.detail?.hook !== undefined ? ` ${evt.detail.hook}` : ''}`) } })
    assert.equal(result.generation, 1)
    // one stream for the operation: verify, fetch per package, unpack, journal steps, hooks, switch
    for (const e of ['verify a', 'fetch-start b', 'fetched a', 'unpack b', 'step', 'hook b load', 'hook a load', 'switch']) assert.ok(events.includes(e), `${e} in ${events.join(', ')}`)
    assert.ok(events.indexOf('switch') < events.indexOf('hook b load') && events.indexOf('hook b load') < events.indexOf('hook a load'))
    assert.deepEqual(w.takeCalls(), ['load b@1.0.0', 'load a@1.0.0'])
    const g = await node.current()
    assert.ok(g !== undefined)
    const a = g.packages.a
    assert.equal(await readFile(join(a.path, 'index.js'), 'utf8'), "export const id = 'a@1.0.0'\n")
    assert.equal(a.entry, 'index.js')
    assert.equal(await readlink(join(node.dataDir, 'current')), 'generations/1')
    // the lockfile is deterministic: parse + serialize gives the same text
    const text = await readFile(join(node.dataDir, LOCKFILE_NAME), 'utf8')
    assert.equal(serializeLock(parseLock(text)), text)
    assert.equal(text, serializeLock(lock))
    // installed and locked roots are pinned
    const pins = node.store.pins().map(p => p.name)
    for (const p of Object.values(lock.packages)) {
      assert.ok(pins.includes(`swarmpack:${p.manifest}`))
      assert.ok(pins.includes(`swarmpack:${p.release}`))
    }
  })

  it('updates A (about 1 % changed): fetches about the changed bytes, reloads A, leaves B alone', async () => {
    const node = await w.node('n2', { a: '^1.0.0' })
    await node.apply()
    w.takeCalls()
    const data = seededBytes(512 * 1024, 11)
    for (let i = 200_000; i < 205_000; i++) data[i] ^= 0x5a
    await w.publish('a', '1.1.0', { b: '^1' }, data)
    await w.pub.publishIndex()
    const result = await node.update(['a'])
    assert.equal(result.generation, 2)
    // manifests are fetched before planning, so the plan knew the bytes exactly
    assert.equal(result.plan.bytes.exact, true)
    assert.ok(result.plan.bytes.fetch > 0 && result.plan.bytes.fetch <= result.bytes.network, `planned ${result.plan.bytes.fetch}, fetched ${result.bytes.network}`)
    assert.ok(result.bytes.network - result.plan.bytes.fetch < 8 * 1024, `only chunks beyond the plan: the release block (planned ${result.plan.bytes.fetch}, fetched ${result.bytes.network})`)
    assert.deepEqual(w.takeCalls(), ['unload a@1.0.0', 'load a@1.1.0'])
    assert.ok(result.bytes.network < 0.2 * 512 * 1024, `fetched ${result.bytes.network} bytes for a 5 KB change`)
    assert.ok(result.bytes.network >= 5000, `fetched at least the changed bytes (${result.bytes.network})`)
    const changes = result.plan.changes.map(c => `${c.action} ${c.name}`)
    assert.deepEqual(changes, ['replace a', 'unchanged b'])
  })

  it('a load hook that throws brings the previous generation back, loaded', async () => {
    const node = await w.node('n3', { a: '1.0.0' })
    await node.apply()
    w.takeCalls()
    const before = await deploymentState(node.dataDir)
    w.failLoad.add('a@1.1.0')
    try {
      await assert.rejects(node.install({ a: '^1.1.0' }), (err: unknown) => {
        assert.ok(isSwarmpackError(err, SwarmpackNodeErrorCode.APPLY_FAILED))
        assert.equal(err.details.generation, 1)
        assert.match(err.message, /refusing to load a@1.1.0/)
        return true
      })
    } finally {
      w.failLoad.clear()
    }
    assert.deepEqual(w.takeCalls(), ['unload a@1.0.0', 'load a@1.1.0', 'load a@1.0.0 (undo)'])
    assert.equal(await readlink(join(node.dataDir, 'current')), 'generations/1')
    assert.deepEqual(node.config.modules, { a: '1.0.0' })
    assert.equal(await deploymentState(node.dataDir), before, 'generations, current, lock, package dirs and pins as before')
  })

  it('refuses an untrusted release with an explanation and changes nothing', async () => {
    const node = await w.node('n4', { a: '1.0.0' })
    await node.apply()
    const stranger = await generateSigningKey()
    await w.pub.publish({ name: 'c', version: '1.0.0', files: { 'x.txt': 'x' }, signer: stranger })
    await w.pub.publishIndex()
    await node.follow()
    const before = await deploymentState(node.dataDir)
    await assert.rejects(node.install({ c: '^1' }), (err: unknown) => {
      assert.ok(isSwarmpackError(err, SwarmpackNodeErrorCode.TRUST_REFUSED), String(err))
      assert.equal(err.details.trustCode, 'ERR_TRUST_NO_CHAIN')
      assert.match(err.message, /c/)
      return true
    })
    assert.equal(await deploymentState(node.dataDir), before)
    assert.deepEqual(Object.keys((await node.current())?.packages ?? {}).sort(), ['a', 'b'])
  })

  it('lists the variants that exist when none fits the host', async () => {
    await w.publish('gpu', '1.0.0', {}, seededBytes(1000, 5), ['plan9-mips', 'haiku-x64'])
    await w.pub.publishIndex()
    const node = await w.node('n5', { gpu: '^1' })
    await assert.rejects(node.resolve(), (err: unknown) => {
      assert.ok(isSwarmpackError(err, SwarmpackNodeErrorCode.NO_VARIANT), String(err))
      assert.deepEqual(err.details.variants, ['haiku-x64', 'plan9-mips'])
      assert.match(err.message, /haiku-x64, plan9-mips/)
      return true
    })
  })

  it('frozen applies the lockfile and refuses it after the config changed', async () => {
    const node = await w.node('n6', { b: '^1' })
    await node.apply()
    const lock = await node.readLock()
    const other = await w.node('n6b', { a: '^1' })
    await assert.rejects(other.apply(undefined, { frozen: true, lock }), (err: unknown) => isSwarmpackError(err, SwarmpackNodeErrorCode.LOCK_STALE))
    const same = await w.node('n6c', { b: '^1' })
    const r = await same.apply(undefined, { frozen: true, lock })
    assert.equal(r.generation, 1)
    assert.equal(serializeLock(await same.readLock()), serializeLock(lock))
  })

  it('dry run changes nothing', async () => {
    const node = await w.node('n7', { a: '^1' })
    const before = await deploymentState(node.dataDir)
    const r = await node.apply(undefined, { dryRun: true })
    assert.equal(r.changed, false)
    assert.ok(r.plan.changes.length === 2)
    assert.equal(await deploymentState(node.dataDir), before)
  })
})
