/**
 * Embeddable nodes (createSwarmpack, test/fixtures/swarmpack-node.ts in `serve` mode) inside the
 * harness's namespaces: each one a process in its own namespace, configured by a deployment
 * config file, listening on port 4001 of its namespace address.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { ROOT, type NodeEvent } from '../helpers/swarm.js'
import type { NetPeer } from './netns.js'
import { startInNs, type NsChild } from './swarm.js'

export const NODE_FIXTURE = join(ROOT, 'test/fixtures/swarmpack-node.ts')

export interface NsNode extends NsChild {
  dataDir: string
}

/**
 * Writes `<dir>/<name>.json` and starts a serving node with it in the namespace of `net`; the
 * config should listen on `/ip4/0.0.0.0/tcp/4001` (PEER_PORT), which `addr` names.
 */
export async function startNsNode (net: NetPeer, name: string, dir: string, config: Record<string, unknown>, timeout = 240_000): Promise<NsNode> {
  const file = join(dir, `${name}.json`)
  await writeFile(file, JSON.stringify(config, null, 2))
  const dataDir = join(dir, name)
  return { ...await startInNs(net, name, NODE_FIXTURE, [dataDir, file, 'serve'], timeout), dataDir }
}

/** Asks the node for its `peers` report until `ok` accepts one (polling, bounded); returns it. */
export async function waitForPeers (n: NsChild, ok: (e: NodeEvent) => boolean, what: string, timeout = 120_000): Promise<NodeEvent> {
  const deadline = Date.now() + timeout
  for (;;) {
    const e = await n.child.command('peers', 'peers', 30_000)
    if (ok(e)) return e
    if (Date.now() > deadline) throw new Error(`${n.child.name}: ${what} not seen within ${timeout} ms; last report ${JSON.stringify(e)}`)
    await delay(500) // discovery and reservations take their time: ask again
  }
}
