import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_HEALTH, MirrorHealth, rankMirrors } from '../src/health.js'

const make = (n: number, opts = {}): MirrorHealth[] => Array.from({ length: n }, (_, i) => new MirrorHealth(`m${i}`, i, { ...DEFAULT_HEALTH, ...opts }))
const order = (ms: MirrorHealth[]): string[] => rankMirrors(ms).map(m => m.url)

describe('mirror health', () => {
  it('keeps the order of preference while all are healthy and fast', () => {
    assert.deepEqual(order(make(3)), ['m0', 'm1', 'm2'])
  })

  it('ranks failing mirrors last, with a cool-down that doubles, and forgives them on success', () => {
    const ms = make(3, { baseCooldownMs: 1000 })
    const before = Date.now()
    ms[0].recordFailure()
    assert.deepEqual(order(ms), ['m1', 'm2', 'm0'])
    const first = ms[0].downUntil - before
    ms[0].recordFailure()
    assert.ok(ms[0].downUntil - before >= first * 2 - 5, 'cool-down doubles')
    ms[0].recordSuccess(10)
    assert.deepEqual(order(ms), ['m0', 'm1', 'm2'])
  })

  it('counts one outage once: requests already in flight do not lengthen the cool-down; Retry-After replaces it', () => {
    const [m] = make(1, { baseCooldownMs: 1000 })
    const started = Date.now() - 50
    for (let i = 0; i < 16; i++) m.recordFailure(started)
    assert.equal(m.consecutiveFailures, 1)
    assert.equal(m.failures, 16)
    assert.ok(m.downUntil - Date.now() <= 1000, 'one failure\'s cool-down')
    assert.equal(m.isResting(), true)
    m.recordFailure(Date.now() + 1, 5000)
    assert.ok(m.downUntil - Date.now() > 4000, 'Retry-After decides')
    // A 404 to a request sent after the failures shows the server is up again.
    m.recordAnswer(Date.now() + 1)
    assert.equal(m.isResting(), false)
    assert.equal(m.snapshot().failingSince, undefined)
  })

  it('does not forgive bad data on the next good answer', () => {
    const ms = make(2)
    ms[0].recordBadData()
    ms[0].recordSuccess(5)
    assert.equal(ms[0].isDown(), true)
    assert.deepEqual(order(ms), ['m1', 'm0'])
    assert.equal(ms[0].snapshot().healthy, false)
  })

  it('ranks slow mirrors after fast ones, and down mirrors by when they come back', () => {
    const ms = make(3, { slowMs: 100 })
    ms[0].recordSuccess(500)
    assert.deepEqual(order(ms), ['m1', 'm2', 'm0'])
    ms[1].recordBadData()
    ms[2].recordFailure()
    assert.deepEqual(order(ms), ['m0', 'm2', 'm1'])
  })
})
