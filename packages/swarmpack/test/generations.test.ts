import assert from 'node:assert/strict'
import { readlink, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isSwarmpackError } from '@swarmpack/core'
import { SwarmpackNodeErrorCode } from '../src/index.js'
import { seededBytes } from './helpers/publisher.js'
import { World, deploymentState } from './helpers/world.js'

describe('node: generations, rollback, gc, uninstall, hook bounds, revocation', () => {
  let w: World
  before(async () => {
    w = await World.create()
    await w.publish('b', '1.0.0')
    await w.publish('a', '1.0.0', { b: '^1' }, seededBytes(128 * 1024, 3))
    await w.publish('a', '1.1.0', { b: '^1' }, seededBytes(128 * 1024, 4))
    await w.publish('solo', '1.0.0')
    await w.pub.publishIndex()
  })
  after(async () => { await w.close() })

  it('rolls back with the same hook order, and gc keeps what it is told', async () => {
    const node = await w.node('g1', { a: '1.0.0' })
    await node.apply()
    await node.install({ a: '1.1.0' })
    await node.install({ solo: '^1' })
    w.takeCalls()
    assert.deepEqual((await node.listGenerations()).map(g => `${g.number}${g.current ? '*' : ''}`), ['1', '2', '3*'])
    await node.rollback(1)
    // solo goes, a is replaced (dependents first), b stays loaded
    assert.deepEqual(w.takeCalls(), ['unload solo@1.0.0 (rollback)', 'unload a@1.1.0 (rollback)', 'load a@1.0.0 (rollback)'])
    assert.equal(await readlink(join(node.dataDir, 'current')), 'generations/1')
    assert.deepEqual(Object.keys((await node.readLock()).packages).sort(), ['a@1.0.0', 'b@1.0.0'])
    const a11 = (await node.generations.read(2)).packages.a.path
    const report = await node.gc({ keep: 1 })
    assert.deepEqual(report.removedGenerations.sort(), [2, 3])
    assert.ok(report.removedDirs.includes(a11))
    await assert.rejects(stat(a11))
    assert.ok(report.removedBlocks > 0, 'blocks only the removed generations held are gone')
    const g1 = await node.current()
    assert.ok(g1 !== undefined)
    for (const p of Object.values(g1.packages)) assert.ok(node.store.has((await import('multiformats/cid')).CID.parse(p.root)))
    await assert.rejects(node.rollback(2), (err: unknown) => isSwarmpackError(err, SwarmpackNodeErrorCode.GENERATION_NOT_FOUND))
  })

  it('uninstall removes a module and dependencies nobody needs', async () => {
    const node = await w.node('g2', { a: '1.0.0', solo: '1.0.0' })
    await node.apply()
    w.takeCalls()
    const r = await node.uninstall(['a'])
    assert.deepEqual(r.plan.changes.map(c => `${c.action} ${c.name}`), ['remove a', 'remove b', 'unchanged solo'])
    assert.deepEqual(w.takeCalls(), ['unload a@1.0.0', 'unload b@1.0.0'])
    await assert.rejects(node.uninstall(['nope']), (err: unknown) => isSwarmpackError(err, SwarmpackNodeErrorCode.INVALID_ARGUMENT))
  })

  it('a hook that overruns its bound aborts the apply', async () => {
    const node = await w.node('g3', { solo: '1.0.0' }, {
      host: { load: async (_p, ctx) => { await new Promise<void>(resolve => { ctx.signal.addEventListener('abort', () => resolve()) ; setTimeout(resolve, 30_000).unref() }) } }
    }, { hooks: { timeoutMs: 200 } })
    const before = await deploymentState(node.dataDir)
    await assert.rejects(node.apply(), (err: unknown) => {
      assert.ok(isSwarmpackError(err, SwarmpackNodeErrorCode.APPLY_FAILED))
      const errors = err.details.errors as Array<{ code: string }>
      assert.equal(errors[0].code, SwarmpackNodeErrorCode.HOOK_TIMEOUT)
      return true
    })
    assert.equal(await deploymentState(node.dataDir), before)
  })

  it('stop releases the data dir; a restarted node keeps the generation and its pins', async () => {
    const node = await w.node('g5', { solo: '1.0.0' })
    await node.apply()
    const pins = node.store.pins().map(p => p.name).sort()
    await node.stop()
    await assert.rejects(node.apply(), (err: unknown) => isSwarmpackError(err, SwarmpackNodeErrorCode.STOPPED))
    w.takeCalls()
    const again = await w.node('g5', { solo: '1.0.0' })
    assert.deepEqual(w.takeCalls(), ['load solo@1.0.0 (start)'])
    assert.equal(again.recovery, undefined)
    assert.deepEqual(again.store.pins().map(p => p.name).sort(), pins)
    assert.equal((await again.apply()).changed, false, 'nothing to do: the lock and the generation match')
  })

  it('a revoked publisher key makes its releases uninstallable, explained', async () => {
    const node = await w.node('g4', {})
    w.pub.revokePublisher()
    await w.pub.publishIndex()
    await node.follow()
    const before = await deploymentState(node.dataDir)
    await assert.rejects(node.install({ solo: '^1' }), (err: unknown) => {
      assert.ok(isSwarmpackError(err, SwarmpackNodeErrorCode.TRUST_REFUSED), String(err))
      assert.equal(err.details.trustCode, 'ERR_TRUST_REVOKED')
      assert.match(err.message, /revoked/)
      return true
    })
    assert.equal(await deploymentState(node.dataDir), before)
  })
})
