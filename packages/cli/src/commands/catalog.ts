/** `search` and `info`: the followed indexes' catalog (answered from index entries; nothing is downloaded). */
import { catalogFromVerifier, type Catalog } from 'swarmpack'
import { CliError, type Context } from '../context.js'
import { bytes, table } from '../format.js'

async function catalogOf (ctx: Context): Promise<Catalog> {
  const node = await ctx.open({ network: true })
  await node.follow()
  return catalogFromVerifier(node.verifier, async (cid, o) => node.fetcher.getBlock(cid, o?.signal !== undefined ? { signal: o.signal } : {}))
}

export async function searchCmd (ctx: Context, text: string | undefined, opts: { category?: string, tag?: string, limit?: string }): Promise<unknown> {
  const limit = Number(opts.limit ?? '50')
  if (!Number.isInteger(limit) || limit < 1) throw new CliError('ERR_USAGE', `--limit takes a whole number, not ${opts.limit}`)
  const catalog = await catalogOf(ctx)
  const hits = await catalog.search({
    ...(text !== undefined ? { text } : {}),
    ...(opts.category !== undefined ? { category: opts.category } : {}),
    ...(opts.tag !== undefined ? { tag: opts.tag } : {}),
    limit
  })
  if (hits.length === 0) ctx.out.log('no package matches')
  ctx.out.print(table(hits.map(h => [h.name, h.latest, [...h.categories, ...h.tags.map(t => `#${t}`)].join(' '), h.description ?? ''])))
  return { hits }
}

export async function infoCmd (ctx: Context, name: string): Promise<unknown> {
  const catalog = await catalogOf(ctx)
  const info = await catalog.info(name)
  const newest = info.versions[0]
  ctx.out.print(`${info.name}${info.latest !== undefined ? ` ${info.latest}` : ''}${newest?.description !== undefined ? ` - ${newest.description}` : ''}`)
  if (newest !== undefined) {
    if (newest.categories.length > 0) ctx.out.print(`categories: ${newest.categories.join(', ')}`)
    if (newest.tags.length > 0) ctx.out.print(`tags: ${newest.tags.join(', ')}`)
  }
  ctx.out.print(`indexers: ${info.indexers.join(', ')}`)
  ctx.out.print(table(info.versions.map(v => [
    v.version,
    v.removed !== undefined ? `removed: ${v.removed}` : v.variants.map(x => `${x.key} ${bytes(x.size)}`).join(', '),
    Object.entries(v.dependencies).map(([d, r]) => `${d}@${r}`).join(' ')
  ])))
  return info
}
