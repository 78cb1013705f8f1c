/** `search` and `info`: the followed indexes' catalog (answered from index entries; nothing is downloaded). */
import type { Swarmpack } from 'swarmpack'
import { CliError, type Context } from '../context.js'
import { bytes, table } from '../format.js'

/** The node, having looked for newer index heads (the catalog answers from the followed indexes). */
async function followed (ctx: Context): Promise<Swarmpack> {
  const node = await ctx.open({ network: true })
  await node.follow()
  return node
}

export async function searchCmd (ctx: Context, text: string | undefined, opts: { category?: string, tag?: string, limit?: string }): Promise<unknown> {
  const limit = Number(opts.limit ?? '50')
  if (!Number.isInteger(limit) || limit < 1) throw new CliError('ERR_USAGE', `--limit takes a whole number, not ${opts.limit}`)
  const node = await followed(ctx)
  const hits = await node.search({
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
  const node = await followed(ctx)
  const info = await node.info(name)
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
