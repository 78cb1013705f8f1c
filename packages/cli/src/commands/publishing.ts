/** `publish`, `index …` and `attest`: the server side, over the node's publish, indexer and attest. */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { keyIdOf, writeIndexerCard, type Indexer, type PublishMeta, type Swarmpack } from 'swarmpack'
import { CliError, exists, type Context } from '../context.js'
import { bytes, table } from '../format.js'
import { parseCid, splitSpec } from '../specs.js'

/** The package metadata file `publish` reads from the package directory (flags override it). */
export const META_FILE = 'swarmpack-package.json'

export interface IndexerOptions {
  /** Name of the key that signs the index (default `default`). */
  indexerKey?: string
  /** Indexer id (default `main`). */
  indexer?: string
  /** Static mirror the indexer writes (default `<dataDir>/mirror`). */
  mirrorDir?: string
}

export interface PublishOptions extends IndexerOptions {
  key?: string
  name?: string
  version?: string
  description?: string
  entry?: string
  dep?: string[]
  tag?: string[]
  category?: string[]
  platform?: string
  variant?: string
  index?: boolean
}

export function mirrorDirOf (ctx: Context, opts: IndexerOptions): string {
  return resolve(opts.mirrorDir ?? join(ctx.paths.dataDir, 'mirror'))
}

async function readMeta (dir: string, opts: PublishOptions): Promise<PublishMeta> {
  const file = join(dir, META_FILE)
  let fromFile: Partial<PublishMeta> = {}
  if (await exists(file)) {
    try {
      fromFile = JSON.parse(await readFile(file, 'utf8')) as Partial<PublishMeta>
    } catch (err) {
      throw new CliError('ERR_USAGE', `${file} is not JSON: ${(err as Error).message}`, { file })
    }
  }
  const deps = Object.fromEntries((opts.dep ?? []).map(d => { const s = splitSpec(d); return [s.name, s.range] }))
  const meta: PublishMeta = {
    ...fromFile,
    name: opts.name ?? fromFile.name ?? '',
    version: opts.version ?? fromFile.version ?? ''
  }
  if (meta.name === '' || meta.version === '') throw new CliError('ERR_USAGE', `publish needs a name and a version: --name/--version, or "name" and "version" in ${file}`)
  if (opts.description !== undefined) meta.description = opts.description
  if (opts.entry !== undefined) meta.entry = opts.entry
  if (opts.dep !== undefined) meta.dependencies = { ...meta.dependencies, ...deps }
  if (opts.tag !== undefined) meta.tags = opts.tag
  if (opts.category !== undefined) meta.categories = opts.category
  if (opts.platform !== undefined) meta.platform = opts.platform
  if (opts.variant !== undefined) meta.variant = opts.variant
  return meta
}

/** The node's indexer, signing with the named key, writing its mirror directory and card. */
export async function openIndexer (ctx: Context, node: Swarmpack, opts: IndexerOptions, publisherKeys: string[] = []): Promise<{ indexer: Indexer, mirrorDir: string }> {
  const key = await (await ctx.keys()).load(opts.indexerKey ?? 'default')
  const mirrorDir = mirrorDirOf(ctx, opts)
  await mkdir(mirrorDir, { recursive: true })
  const indexer = await node.indexer({ key, indexer: opts.indexer ?? 'main', mirrorDir })
  if (publisherKeys.length > 0) await writeCard(node, indexer, mirrorDir, publisherKeys)
  return { indexer, mirrorDir }
}

/** The card followers read (`swarmpack follow <mirror>`): indexer id and key, publisher roots, peers. */
export async function writeCard (node: Swarmpack, indexer: Indexer, mirrorDir: string, publisherKeys: string[]): Promise<void> {
  const peers = node.peer !== undefined ? node.peer.multiaddrs().map(String).filter(a => a.includes('/p2p/')) : []
  await writeIndexerCard(mirrorDir, {
    indexer: indexer.indexer,
    keys: [indexer.keyId],
    publishers: [...new Set(publisherKeys)].map(k => ({ pattern: '*', roots: [k] })),
    peers
  })
}

export async function publishCmd (ctx: Context, dir: string, opts: PublishOptions): Promise<unknown> {
  const src = resolve(dir)
  if (!(await exists(src))) throw new CliError('ERR_NOT_FOUND', `no directory ${src}`)
  const meta = await readMeta(src, opts)
  // local work: the index head reaches the DHT from `swarmpack serve` (a put from a peer that just
  // started, with no one to put to, only waits)
  const node = await ctx.open({ network: false })
  const key = await (await ctx.keys()).load(opts.key ?? 'default')
  const ix = opts.index !== false ? await openIndexer(ctx, node, opts, [keyIdOf(key)]) : undefined
  try {
    ctx.out.log(`packing ${meta.name}@${meta.version} from ${src}`)
    const r = await node.publish(src, meta, { key, ...(ix !== undefined ? { indexer: ix.indexer } : {}), onProgress: ctx.view.onProgress })
    for (const v of r.variants) ctx.out.log(`  variant ${v.key}: ${bytes(v.size)} in ${v.blocks} blocks, manifest ${v.manifest.toString()}`)
    ctx.out.log(`signed release ${r.release.cid.toString()} with key ${keyIdOf(key)}`)
    if (r.index !== undefined) {
      const where = [
        r.index.mirror !== undefined && !('error' in r.index.mirror) ? `mirror ${ix?.mirrorDir}` : undefined,
        r.index.dht !== undefined && 'stored' in r.index.dht ? `DHT (${r.index.dht.stored} peers)` : undefined
      ].filter(Boolean)
      ctx.out.log(`index ${r.index.indexer} version ${r.index.version} signed (${r.index.releases} releases)${where.length > 0 ? `, published to ${where.join(' and ')}` : ''}`)
      ctx.out.log('`swarmpack serve` shares the package and puts the index head into the DHT')
    }
    ctx.out.print(r.release.cid.toString())
    return {
      name: r.name,
      version: r.version,
      release: r.release.cid,
      variants: r.variants,
      ...(r.index !== undefined ? { index: { indexer: r.index.indexer, version: r.index.version, index: r.index.index, releases: r.index.releases, mirror: r.index.mirror, dht: r.index.dht, mirrorDir: ix?.mirrorDir } } : {})
    }
  } finally {
    await ix?.indexer.close()
  }
}

export async function indexAdd (ctx: Context, releases: string[], opts: IndexerOptions & { publish?: boolean }): Promise<unknown> {
  const node = await ctx.open({ network: false })
  const { indexer } = await openIndexer(ctx, node, opts)
  try {
    const added = []
    for (const r of releases) {
      // a release given as a file (its envelope bytes) or as a CID the node can fetch
      const release = await exists(r) ? new Uint8Array(await readFile(r)) : parseCid(r)
      const a = await indexer.add(release)
      ctx.out.log(`${a.added ? 'added' : 'already listed'} ${a.name}@${a.version} (${a.release.toString()})`)
      added.push(a)
    }
    const version = opts.publish !== false ? await indexer.publish() : undefined
    if (version !== undefined) ctx.out.log(`index ${version.indexer} version ${version.version} signed (${version.releases} releases)`)
    return { added, ...(version !== undefined ? { index: { indexer: version.indexer, version: version.version, index: version.index, releases: version.releases } } : {}) }
  } finally {
    await indexer.close()
  }
}

export async function indexPublish (ctx: Context, opts: IndexerOptions): Promise<unknown> {
  const node = await ctx.open({ network: false })
  const { indexer, mirrorDir } = await openIndexer(ctx, node, opts)
  try {
    const v = await indexer.publish()
    ctx.out.log(`index ${v.indexer} version ${v.version} signed (${v.releases} releases), mirror ${mirrorDir}`)
    return { indexer: v.indexer, version: v.version, index: v.index, releases: v.releases, expires: v.expires, mirror: v.mirror, dht: v.dht, mirrorDir }
  } finally {
    await indexer.close()
  }
}

export async function indexList (ctx: Context, opts: IndexerOptions): Promise<unknown> {
  const node = await ctx.open({ network: false })
  const { indexer } = await openIndexer(ctx, node, opts)
  try {
    const entries = indexer.entries().map(e => ({ name: e.name, version: e.version, removed: 'removed' in e.slot, ...('release' in e.slot ? { release: e.slot.release, variants: Object.keys(e.slot.variants) } : {}) }))
    ctx.out.print(table(entries.map(e => [`${e.name}@${e.version}`, e.removed ? 'removed' : (e.variants ?? []).join(',')])))
    return { indexer: indexer.indexer, version: indexer.version, key: indexer.keyId, entries }
  } finally {
    await indexer.close()
  }
}

export async function indexRemove (ctx: Context, spec: string, opts: IndexerOptions & { reason?: string, publish?: boolean }): Promise<unknown> {
  const { name, range: version } = splitSpec(spec)
  const node = await ctx.open({ network: false })
  const { indexer } = await openIndexer(ctx, node, opts)
  try {
    await indexer.remove(name, version, opts.reason ?? 'withdrawn by the indexer')
    const v = opts.publish !== false ? await indexer.publish() : undefined
    ctx.out.log(`removed ${name}@${version}${v !== undefined ? `; index version ${v.version} signed` : ''}`)
    return { name, version, ...(v !== undefined ? { index: { version: v.version, index: v.index } } : {}) }
  } finally {
    await indexer.close()
  }
}

export async function attestCmd (ctx: Context, release: string, opts: { key?: string, kind?: string, out?: string }): Promise<unknown> {
  const node = await ctx.open()
  const key = await (await ctx.keys()).load(opts.key ?? 'default')
  const bytesOf = await exists(release) ? new Uint8Array(await readFile(release)) : await node.fetcher.getBlock(parseCid(release))
  if (opts.kind !== undefined && opts.kind !== 'rebuilt' && opts.kind !== 'mirror-matched') throw new CliError('ERR_USAGE', `--kind is rebuilt or mirror-matched, not ${opts.kind}`)
  const signed = await node.attest(bytesOf, { key, ...(opts.kind !== undefined ? { kind: opts.kind as 'rebuilt' } : {}) })
  if (opts.out !== undefined) {
    await mkdir(opts.out, { recursive: true })
    for (const s of signed) await writeFile(join(opts.out, `${s.cid.toString()}.attestation`), s.bytes)
  }
  for (const s of signed) ctx.out.print(`${s.variant}  ${s.cid.toString()}`)
  return { attester: keyIdOf(key), attestations: signed.map(s => ({ variant: s.variant, manifest: s.manifest, cid: s.cid })) }
}
