/**
 * `serve`: a long-running peer. It shares what it holds (or, in mirror mode, replicates what the
 * followed indexes list), optionally serves its static mirror directory and a trustless gateway
 * over HTTP, and when this data dir runs an indexer, puts the index head into the DHT again on a
 * schedule and keeps the indexer card's peer addresses current. Stops cleanly on SIGINT/SIGTERM.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { keyIdOf, startMirrorServer, type MirrorServer } from 'swarmpack'
import { CliError, exists, type Context } from '../context.js'
import { mirrorDirOf, openIndexer, writeCard, type IndexerOptions } from './publishing.js'

export interface ServeOptions extends IndexerOptions {
  mode?: string
  listen?: string[]
  http?: string
  httpHost?: string
  gateway?: boolean
  republishEvery?: string
  key?: string
}

const MODES = ['consume', 'share', 'mirror']

export async function serveCmd (ctx: Context, opts: ServeOptions, signal: AbortSignal): Promise<unknown> {
  if (opts.mode !== undefined && !MODES.includes(opts.mode)) throw new CliError('ERR_USAGE', `--mode is one of ${MODES.join(', ')}, not ${opts.mode}`)
  const overrides: Record<string, unknown> = {}
  if (opts.mode !== undefined) overrides.sharing = opts.mode
  if (opts.listen !== undefined) overrides.listen = opts.listen
  const node = await ctx.open({ network: true, follow: true, ...(Object.keys(overrides).length > 0 ? { overrides } : {}) })
  if (node.peer === undefined) throw new CliError('ERR_USAGE', 'sharing is "off" in the config: serve needs a peer (use --mode share)')
  const mirrorDir = mirrorDirOf(ctx, opts)
  let http: MirrorServer | undefined
  let republish: ReturnType<typeof setInterval> | undefined
  let indexerOpen: Awaited<ReturnType<typeof openIndexer>> | undefined
  try {
    // an indexer that published from this data dir keeps its head alive in the DHT
    const id = opts.indexer ?? 'main'
    const stateFiles = await readdir(join(ctx.paths.dataDir, 'indexers')).catch(() => [] as string[])
    if (stateFiles.some(f => f.startsWith(`indexer-${id}.`))) {
      const publisherKey = await (await ctx.keys()).load(opts.key ?? 'default')
      indexerOpen = await openIndexer(ctx, node, opts, [keyIdOf(publisherKey)])
      const { indexer } = indexerOpen
      const peer = node.peer
      const every = Math.max(10, Number(opts.republishEvery ?? '3600')) * 1000
      let last = 0
      let putting = false
      // the head goes to the DHT once there are peers to hold it, then again every `every`
      const put = async (): Promise<void> => {
        if (putting || peer.routingTableSize() === 0 || Date.now() - last < every) return
        putting = true
        try {
          const r = await indexer.republish({ signal: AbortSignal.any([signal, AbortSignal.timeout(60_000)]) })
          last = Date.now()
          ctx.out.log(`index head ${indexer.indexer} v${indexer.version} put to ${r.stored} DHT peers`)
          ctx.out.event('republish', { indexer: indexer.indexer, version: indexer.version, ...r })
        } catch (err) {
          ctx.out.log(`index head ${indexer.indexer} v${indexer.version}: DHT put failed (${(err as { code?: string }).code ?? (err as Error).message}), retrying`)
        } finally {
          putting = false
        }
      }
      if (indexer.version > 0) republish = setInterval(() => { void put() }, 5000)
    }
    if (opts.http !== undefined) {
      const port = Number(opts.http)
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError('ERR_USAGE', `--http takes a port, not ${opts.http}`)
      http = await startMirrorServer({
        ...(await exists(mirrorDir) ? { dir: mirrorDir } : {}),
        ...(opts.gateway === true ? { blockstore: node.store } : {}),
        port,
        host: opts.httpHost ?? '127.0.0.1'
      })
    }
    // the card names this peer's live addresses, so followers can bootstrap from it
    if (indexerOpen !== undefined) await writeCard(node, indexerOpen.indexer, indexerOpen.mirrorDir, [keyIdOf(await (await ctx.keys()).load(opts.key ?? 'default'))])
    const ready = {
      peerId: node.peer.peerId.toString(),
      addresses: node.peer.multiaddrs().map(String),
      sharing: node.config.sharing,
      http: http?.url ?? null,
      mirrorDir: await exists(mirrorDir) ? mirrorDir : null,
      gateway: opts.gateway === true && http !== undefined ? `${http.url}ipfs/` : null,
      indexer: indexerOpen !== undefined ? { id: indexerOpen.indexer.indexer, version: indexerOpen.indexer.version, key: indexerOpen.indexer.keyId } : null,
      pid: process.pid
    }
    ctx.out.event('ready', ready)
    ctx.out.log(`serving as ${ready.peerId} (${ready.sharing})`)
    for (const a of ready.addresses) ctx.out.log(`  peer   ${a}`)
    if (http !== undefined) ctx.out.log(`  http   ${http.url}${ready.mirrorDir !== null ? ` (mirror ${ready.mirrorDir})` : ''}${ready.gateway !== null ? `, gateway ${ready.gateway}` : ''}`)
    if (ready.indexer !== null) ctx.out.log(`  index  ${ready.indexer.id} v${ready.indexer.version} (key ${ready.indexer.key})`)
    ctx.out.log('Ctrl-C stops')
    await new Promise<void>(resolve => {
      if (signal.aborted) resolve()
      signal.addEventListener('abort', () => { resolve() }, { once: true })
    })
    ctx.out.log('stopping')
    return { ...ready, stopped: true }
  } finally {
    if (republish !== undefined) clearInterval(republish)
    await http?.close()
    await indexerOpen?.indexer.close()
  }
}
