/**
 * Automatic updates (S3): a new index version allows a newer version inside the ranges; a node
 * with policy `apply` applies it within its interval (atomic apply, host hooks), one with
 * `notify` only tells, the host can veto, and outside the update window nothing is applied.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { SwarmpackNodeErrorCode, parseConfig, windowState, type UpdateAvailable } from '../src/index.js'
import { seededBytes } from './helpers/publisher.js'
import { World, deploymentState } from './helpers/world.js'
import { collect, waitFor } from './helpers/ops.js'

const hhmm = (t: number): string => new Date(t).toISOString().slice(11, 16)

describe('ops: automatic updates', () => {
  let w: World
  before(async () => {
    w = await World.create()
    await w.publish('b', '1.0.0')
    await w.publish('a', '1.0.0', { b: '^1' }, seededBytes(256 * 1024, 3))
    await w.pub.publishIndex()
  })
  after(async () => { await w.close() })

  it('config: operations keys have defaults and bad values name their path', () => {
    const c = parseConfig({})
    assert.deepEqual(c.updates, { policy: 'off', intervalMs: 3600_000 })
    assert.deepEqual(c.scrub, { intervalMs: 24 * 3600_000, rateBytesPerSec: 32 * 1024 * 1024, restore: true, revoked: 'report' })
    assert.deepEqual(c.logs, { json: false })
    assert.equal(c.cache.checkIntervalMs, 600_000)
    assert.throws(() => parseConfig({ updates: { policy: 'sometimes', window: { start: '25:00', end: '01:00' } }, scrub: { rateBytesPerSec: 10 }, logs: { colour: true } }), (err: any) => {
      assert.equal(err.code, SwarmpackNodeErrorCode.CONFIG_INVALID)
      const paths = err.details.issues.map((i: { path: string }) => i.path).sort()
      assert.deepEqual(paths, ['logs.colour', 'scrub.rateBytesPerSec', 'updates.policy', 'updates.window.start'])
      return true
    })
  })

  it('windowState: open inside the daily window, closed outside, crossing midnight', () => {
    const t = Date.parse('2026-11-30T10:30:00Z')
    assert.deepEqual(windowState({ start: '10:00', end: '11:00', utc: true }, t).open, true)
    assert.deepEqual(windowState({ start: '11:00', end: '12:00', utc: true }, t), { open: false, opensAt: Date.parse('2026-11-30T11:00:00Z') })
    assert.equal(windowState({ start: '22:00', end: '11:00', utc: true }, t).open, true)
    assert.equal(windowState({ start: '22:00', end: '02:00', utc: true }, t).open, false)
    assert.equal(windowState({ start: '22:00', end: '02:00', utc: true }, t).opensAt, Date.parse('2026-11-30T22:00:00Z'))
  })

  it('apply policy applies a new version within the interval; notify, veto and a closed window change nothing', async () => {
    const interval = { intervalMs: 200 }
    const auto = await w.node('auto', { a: '^1.0.0' }, {}, { updates: { policy: 'apply', ...interval } })
    const notify = await w.node('notify', { a: '^1.0.0' }, {}, { updates: { policy: 'notify', ...interval } })
    const approvals: UpdateAvailable[] = []
    const veto = await w.node('veto', { a: '^1.0.0' }, { approveUpdate: (u) => { approvals.push(u); return false } }, { updates: { policy: 'apply', ...interval } })
    const now = Date.now()
    const closed = { start: hhmm(now + 2 * 3600_000), end: hhmm(now + 3 * 3600_000), utc: true }
    const windowed = await w.node('windowed', { a: '^1.0.0' }, {}, { updates: { policy: 'apply', ...interval, window: closed } })
    for (const n of [auto, notify, veto, windowed]) assert.equal((await n.apply()).generation, 1)
    // nothing newer yet: the watchers look and find nothing
    await waitFor(async () => (await auto.status()).updates.lastCheck?.available === false, 'a first check on the auto node')
    const states = await Promise.all([notify, veto, windowed].map(async n => deploymentState(n.dataDir)))
    const ev = {
      auto: collect(auto.events, 'update:applied'),
      notify: collect<UpdateAvailable>(notify.events, 'update:available'),
      veto: collect<UpdateAvailable>(veto.events, 'update:available'),
      windowed: collect<UpdateAvailable>(windowed.events, 'update:available')
    }
    const autoAvailable = collect<UpdateAvailable>(auto.events, 'update:available')

    const data = seededBytes(256 * 1024, 3)
    data[1000] ^= 0xff
    await w.publish('a', '1.1.0', { b: '^1' }, data)
    await w.pub.publishIndex()

    const applied = await waitFor(() => ev.auto[0], 'the auto node to apply a@1.1.0', 90_000)
    assert.equal(applied.result.generation, 2)
    assert.deepEqual(applied.changes.map((c: any) => `${c.action} ${c.name} ${c.from?.version}->${c.to?.version}`), ['replace a 1.0.0->1.1.0'])
    assert.equal(autoAvailable[0]?.decision, 'apply')
    assert.equal((await auto.current())?.packages.a.version, '1.1.0')
    assert.equal((await auto.current())?.packages.b.version, '1.0.0')

    const told = await waitFor(() => ev.notify[0], 'the notify node to announce the update', 90_000)
    assert.equal(told.decision, 'notify')
    assert.equal(told.policy, 'notify')
    assert.deepEqual(told.changes.map(c => `${c.name} ${c.to?.version}`), ['a 1.1.0'])
    assert.ok(told.plan.lock.packages['a@1.1.0'] !== undefined, 'the plan carries the new lock')
    assert.equal(told.indexes[0]?.version, 2)
    const vetoed = await waitFor(() => ev.veto[0], 'the veto node to ask its host', 90_000)
    assert.equal(vetoed.decision, 'vetoed')
    assert.equal(approvals[0].changes[0].name, 'a')
    const deferred = await waitFor(() => ev.windowed[0], 'the windowed node to defer', 90_000)
    assert.equal(deferred.decision, 'deferred')
    assert.ok(deferred.windowOpens !== undefined && deferred.windowOpens > Date.now() + 3600_000, `opens in the future: ${deferred.windowOpens}`)

    // a few more checks happen; still nothing changes on disk, and each plan is announced once
    const seen = (await notify.status()).updates.lastCheck?.at ?? 0
    await waitFor(async () => ((await notify.status()).updates.lastCheck?.at ?? 0) > seen + 400, 'two more checks on the notify node')
    await waitFor(async () => ((await windowed.status()).updates.lastCheck?.at ?? 0) > seen + 400, 'two more checks on the windowed node')
    assert.deepEqual(await Promise.all([notify, veto, windowed].map(async n => deploymentState(n.dataDir))), states)
    assert.equal(ev.notify.length, 1)
    assert.equal((await notify.current())?.packages.a.version, '1.0.0')

    // on demand: the same check, reported, not applied
    const check = await notify.checkUpdates()
    assert.equal(check.available, true)
    assert.equal(check.applied, undefined)
    assert.equal(check.decision, 'notify')
  })

  it('a failing load hook undoes the automatic update and records ERR_UPDATE_FAILED', async () => {
    const n = await w.node('failing', { a: '^1.0.0' }, {}, { updates: { policy: 'apply', intervalMs: 200 } })
    await n.apply()
    const failed = collect(n.events, 'update:failed')
    const before = (await n.current())?.number
    w.failLoad.add('a@1.2.0')
    try {
      await w.publish('a', '1.2.0', { b: '^1' })
      await w.pub.publishIndex()
      const f = await waitFor(() => failed.find(e => e.error.details?.cause === SwarmpackNodeErrorCode.APPLY_FAILED), 'the update to fail in its load hook', 90_000)
      assert.equal(f.error.code, SwarmpackNodeErrorCode.UPDATE_FAILED)
      assert.match(f.error.message, /refusing to load a@1\.2\.0/)
      assert.equal((await n.current())?.number, before)
      const status = await n.status()
      assert.ok(status.errors.some(e => e.code === SwarmpackNodeErrorCode.UPDATE_FAILED && e.op === 'update'), JSON.stringify(status.errors))
      assert.ok(status.errors.some(e => e.code === SwarmpackNodeErrorCode.APPLY_FAILED), `the apply failure itself is recorded with its code: ${JSON.stringify(status.errors)}`)
    } finally {
      w.failLoad.delete('a@1.2.0')
    }
  })
})
