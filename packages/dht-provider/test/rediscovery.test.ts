/**
 * Provider lookups repeated while a package is fetched (rediscovery.ts): backing off after each
 * lookup, skipped without backing off while the fetch knows enough peers, stopped when the fetch
 * ends. Real timers with short waits.
 */
import assert from 'node:assert/strict'
import { setTimeout as delay } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { Rediscovery } from '../src/rediscovery.js'

const root = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

describe('rediscovery', () => {
  it('repeats lookups during a fetch, backing off; a skipped lookup does not back off; the end of the fetch stops them', async () => {
    const calls: Array<{ at: number, looked: boolean }> = []
    let enough = false
    const started: string[] = []
    const r = new Rediscovery(async () => {
      calls.push({ at: Date.now(), looked: !enough })
      return !enough
    }, { firstMs: 40, maxMs: 160 }, (cid) => { started.push(cid.toString()) })
    const t0 = Date.now()
    const end = r.begin(root)
    assert.deepEqual(started, [root.toString()])
    // lookups at ~40, ~120 (40 + 80), ~280 (+160, the cap) ms
    while (calls.length < 3) await delay(10)
    assert.ok(calls[1].at - calls[0].at >= 70, `second lookup ${calls[1].at - calls[0].at} ms after the first: backs off`)
    assert.ok(calls[0].at - t0 >= 35)
    // enough peers now: the next ticks skip, and keep the 160 ms wait rather than growing it
    enough = true
    while (calls.filter(c => !c.looked).length < 2) await delay(10)
    const skipped = calls.filter(c => !c.looked)
    const gap = skipped[1].at - skipped[0].at
    assert.ok(gap < 300, `skipped ticks ${gap} ms apart: no back-off past the cap`)
    end()
    // one whole wait with no fetch running ends it
    await delay(500)
    const n = calls.length
    await delay(400)
    assert.equal(calls.length, n, 'no lookup after the fetch ended')
    r.stop()
  })
})
