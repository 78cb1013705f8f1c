/** `init` and `keys`: a starter config, and the signing keys in the data dir. */
import { mkdir, writeFile } from 'node:fs/promises'
import { relative } from 'node:path'
import { starterConfigText } from 'swarmpack'
import { CliError, exists, type Context } from '../context.js'
import { table } from '../format.js'

export async function init (ctx: Context, opts: { force?: boolean, sharing?: 'off' | 'consume' | 'share' | 'mirror' }): Promise<unknown> {
  const { config, dataDir } = ctx.paths
  if (await exists(config) && opts.force !== true) throw new CliError('ERR_EXISTS', `${config} exists`, { config })
  await mkdir(dataDir, { recursive: true })
  await writeFile(config, starterConfigText(opts.sharing !== undefined ? { sharing: opts.sharing } : {}))
  ctx.out.log(`wrote ${relative(process.cwd(), config) || config} (data dir ${relative(process.cwd(), dataDir) || dataDir})`)
  ctx.out.log('next: `swarmpack follow <mirror url>` to follow an indexer, then `swarmpack install <name>@<range>`')
  ctx.out.log('      or, to publish: `swarmpack keys generate`, `swarmpack publish <dir>`, `swarmpack serve`')
  return { config, dataDir }
}

export async function keysGenerate (ctx: Context, name: string, opts: { force?: boolean }): Promise<unknown> {
  if (opts.force !== true && (await (await ctx.keys()).names()).includes(name)) throw new CliError('ERR_EXISTS', `a key named ${name} exists in ${(await ctx.keys()).dir}`, { name })
  const info = await (await ctx.keys()).generate(name, { overwrite: opts.force === true })
  ctx.out.log(`generated key ${info.name} in ${info.path}`)
  ctx.out.print(info.id)
  return info
}

export async function keysShow (ctx: Context, name: string): Promise<unknown> {
  const info = await (await ctx.keys()).info(name)
  ctx.out.print(table([['name', info.name], ['id', info.id], ['file', info.path]]))
  return info
}

/** The public half: the key id is the public key, what followers put into their configs. */
export async function keysExport (ctx: Context, name: string): Promise<unknown> {
  const info = await (await ctx.keys()).info(name)
  ctx.out.print(info.id)
  return { name: info.name, id: info.id }
}

export async function keysList (ctx: Context): Promise<unknown> {
  const keys = await (await ctx.keys()).list()
  if (keys.length === 0) ctx.out.log('no keys yet: `swarmpack keys generate`')
  else ctx.out.print(table(keys.map(k => [k.name, k.id])))
  return { keys }
}
