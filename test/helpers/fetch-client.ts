/**
 * Test and bench fixture: a process that fetches packages with the resolver's multi-source
 * fetcher over the swarm (a consume-mode SwarmNode's DhtProvider) and HTTP mirrors (one
 * HttpProvider per mirror, so each is a source of its own). JSON lines on stdout; commands on stdin:
 *
 *   fetch <root> [policy]   -> start, block (every block), fetched {result, httpRequests} | error {code, details}
 *   direct <root>           -> direct {ms, bytes}: DhtProvider.fetchDag alone, no fetcher (bench baseline)
 *   status                  -> status {routingTable}
 *
 *   fetch-client.ts --data-dir <dir> [--bootstrap <ma>]... [--mirror <url>]... [--mirror-concurrency n]
 *                   [--stall-ms n] [--lookup-ms n] [--block-ms n] [--policy p]
 */
import '@swarmpack/core/polyfill'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { FsBlockstore, parseCid } from '@swarmpack/core'
import { createSwarmNode, createSwarmpackPeer } from '@swarmpack/dht-provider'
import { HttpProvider } from '@swarmpack/http-provider'
import { createFetcher, type FetchSource, type SourcePolicy } from '@swarmpack/resolver'

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    bootstrap: { type: 'string', multiple: true },
    mirror: { type: 'string', multiple: true },
    'mirror-concurrency': { type: 'string' },
    'stall-ms': { type: 'string' },
    'lookup-ms': { type: 'string' },
    'block-ms': { type: 'string' },
    'hedge-ms': { type: 'string' },
    policy: { type: 'string' },
    json: { type: 'boolean' }
  }
})
const num = (v: string | undefined): number | undefined => v === undefined ? undefined : Number(v)
const emit = (e: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(e) + '\n') }

const store = await FsBlockstore.open(join(values['data-dir'] ?? '.', 'store'), { fsync: false })
const peer = await createSwarmpackPeer({ network: 'loopback', listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: values.bootstrap ?? [] })
const node = await createSwarmNode({ peer, blockstore: store, mode: 'consume' })
const mirrors = (values.mirror ?? []).map(url => new HttpProvider({ mirrors: [url], retries: 1, retryDelayMs: 100, timeoutMs: 5000 }))
const sources: FetchSource[] = [
  { provider: node.provider, kind: 'peer' },
  ...mirrors.map((provider, priority) => ({ provider, kind: 'mirror' as const, priority, ...(values['mirror-concurrency'] !== undefined ? { concurrency: Number(values['mirror-concurrency']) } : {}) }))
]
const fetcher = createFetcher({
  blockstore: store,
  sources,
  ...(values.policy !== undefined ? { policy: values.policy as SourcePolicy } : {}),
  ...(values['stall-ms'] !== undefined ? { stallTimeoutMs: num(values['stall-ms']) } : {}),
  ...(values['lookup-ms'] !== undefined ? { lookupTimeoutMs: num(values['lookup-ms']) } : {}),
  ...(values['block-ms'] !== undefined ? { blockTimeoutMs: num(values['block-ms']) } : {}),
  ...(values['hedge-ms'] !== undefined ? { hedgeAfterMs: num(values['hedge-ms']) } : {})
})
emit({ event: 'ready', peerId: peer.peerId.toString(), multiaddrs: peer.multiaddrs().map(String), sources: fetcher.sources.map(s => s.provider.name) })

async function fetchRoot (rootText: string, policy?: string): Promise<void> {
  const root = parseCid(rootText)
  const started = Date.now()
  let blocks = 0
  // peak resident memory during the fetch (the fetcher's memory must not grow with the package)
  const rssBefore = process.memoryUsage().rss
  let peakRss = rssBefore
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }, 20)
  try {
    const result = await fetcher.fetchDag(root, {
      ...(policy !== undefined ? { policy: policy as SourcePolicy } : {}),
      onProgress: (evt) => {
        const d = evt.detail as Record<string, any>
        switch (evt.type) {
          case 'swarmpack:fetch:start': emit({ event: 'start', totalBlocks: d.totalBlocks, totalBytes: d.totalBytes }); break
          case 'swarmpack:fetch:block': emit({ event: 'block', n: ++blocks, cid: String(d.cid), bytes: d.bytes, source: d.source, origin: d.origin, local: d.local, t: Date.now() - started }); break
          case 'swarmpack:fetch:ban': emit({ event: 'ban', ...d }); break
          case 'swarmpack:fetch:source-switch': emit({ event: 'switch', ...d, t: Date.now() - started }); break
          default: break
        }
      }
    })
    emit({ event: 'fetched', result: { ...result, root: String(result.root) }, httpRequests: mirrors.map(m => m.stats().requests), rssBefore, peakRss })
  } catch (err) {
    const e = err as { code?: string, message: string, details?: unknown }
    emit({ event: 'error', command: 'fetch', code: e.code, message: e.message, details: e.details, ms: Date.now() - started, httpRequests: mirrors.map(m => m.stats().requests) })
  } finally {
    clearInterval(sampler)
    await node.provider.closeSession(root)
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, ...args] = line.trim().split(/\s+/)
  if (cmd === 'fetch') void fetchRoot(args[0] ?? '', args[1])
  else if (cmd === 'direct') {
    node.provider.fetchDag(parseCid(args[0] ?? '')).then(r => { emit({ event: 'direct', ms: r.ms, bytes: r.bytes, blocks: r.blocks }) },
      (err: Error) => { emit({ event: 'error', command: 'direct', message: err.message }) })
  } else if (cmd === 'status') emit({ event: 'status', routingTable: peer.routingTableSize() })
})

const stop = async (): Promise<void> => {
  await node.stop()
  await Promise.all(mirrors.map(async m => m.close()))
  await peer.stop()
  await store.close()
  process.exit(0)
}
process.on('SIGTERM', () => { void stop() })
process.on('SIGINT', () => { void stop() })
