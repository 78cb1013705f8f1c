/**
 * Shared pieces of the publishing tests: a small loopback swarm whose peers carry the trust head
 * format, a temporary directory, and a block store. Everything is real (TCP on 127.0.0.1, files).
 */
import '@swarmpack/core/polyfill'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSwarmpackPeer, type SwarmpackPeer } from '@swarmpack/dht-provider'
import { indexHeadRecordFormat } from '../src/index.js'

export const HOUR = 3600_000
export const DAY = 24 * HOUR

/** `count` peers on 127.0.0.1: the first is the hub the others bootstrap from. */
export async function startSwarm (count: number): Promise<SwarmpackPeer[]> {
  const peers: SwarmpackPeer[] = []
  try {
    const hub = await createSwarmpackPeer({ network: 'loopback', headRecords: indexHeadRecordFormat() })
    peers.push(hub)
    const boot = hub.multiaddrs().map(String)
    for (let i = 1; i < count; i++) peers.push(await createSwarmpackPeer({ network: 'loopback', bootstrap: boot, headRecords: indexHeadRecordFormat() }))
    await Promise.all(peers.map(async p => p.waitForRoutingTable(Math.min(2, count - 1), { timeout: 60_000, refreshEvery: 3000 })))
    return peers
  } catch (err) {
    await stopSwarm(peers)
    throw err
  }
}

export async function stopSwarm (peers: SwarmpackPeer[]): Promise<void> {
  await Promise.all(peers.map(async p => p.stop().catch(() => {})))
}

export async function tempDir (prefix: string): Promise<{ dir: string, remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `swarmpack-${prefix}-`))
  return { dir, remove: async () => rm(dir, { recursive: true, force: true }) }
}
