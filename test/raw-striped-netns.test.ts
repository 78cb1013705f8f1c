/**
 * The from-memory baseline of the distribution benchmark (test/netns/raw-striped.ts): 1 seed and 3
 * downloaders in their own namespaces with capped uplinks, the seed streaming one stripe of an
 * in-memory package to each downloader over plain libp2p streams, each downloader forwarding its
 * stripe to the others. Every downloader ends with exactly S bytes (its own stripe from the seed,
 * the rest from the others) and nothing is left behind. Skips (saying why) where namespaces can't
 * be made. Times are printed, not asserted (bench/swarm-distribution measures them).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { NETNS_PREFIX, netnsUnavailable } from './netns/netns.js'
import { runRawStriped } from './netns/raw-striped.js'
import { lowerBounds } from './netns/swarm.js'

const why = netnsUnavailable()
if (why !== undefined) console.log(`# raw-striped-netns: skipped: ${why}`)
const namespaces = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map(l => l.split(' ')[0]).filter(n => n.startsWith(`${NETNS_PREFIX}${process.pid.toString(36)}x`))

describe('raw striped baseline in network namespaces', { skip: why, timeout: 300_000 }, () => {
  it('1 seed + 3 downloaders, 2 MiB, 20 Mbit/s uplinks: every downloader receives exactly S bytes, a third of them from the seed', async () => {
    const S = 2 << 20
    const r = await runRawStriped({ downloaders: 3, uplinkMbit: 20, packageBytes: S, timeoutMs: 120_000 })
    const lb = lowerBounds(S, 20, 3)
    console.log(`# all 3 in ${(r.allMs / 1000).toFixed(1)} s (S/u ${lb.swarmSec.toFixed(1)} s); seed sent ${(r.seedSent / S).toFixed(2)}x; CPU ${(r.transferCpuMs / 1000).toFixed(1)} s; load ${r.load[0].toFixed(1)}`)
    assert.equal(r.peers.length, 3)
    for (const p of r.peers) {
      assert.ok(p.ms !== undefined, `${p.name} completed (${p.error ?? ''})`)
      assert.equal(p.payloadReceived, S, `${p.name} received S bytes`)
      // its own stripe came from the seed; the two others came forwarded by the other downloaders
      assert.ok(Math.abs(p.fromSeed - S / 3) <= 1, `${p.name} got a third from the seed (${p.fromSeed})`)
      // the forwards went over its uplink: about two stripes, plus noise and yamux framing
      assert.ok(p.sent >= (2 * S) / 3, `${p.name} forwarded its stripe (${p.sent} bytes sent)`)
    }
    // the seed sent each stripe once: about S, not N·S
    assert.ok(r.seedSent >= S && r.seedSent < 1.2 * S, `seed sent ${r.seedSent} bytes for ${S}`)
    assert.ok(r.transferCpuMs > 0, 'CPU samples cover the transfer')
    assert.deepEqual(namespaces(), [], 'no namespace left behind')
  })
})
