/**
 * Loading and validating the deployment config, from an object or a JSON file. Every problem is
 * reported at once in one ERR_CONFIG_INVALID whose message names each path as it appears in the
 * file (`sources.mirrors[1].url`), and relative directory paths are resolved against the file.
 */
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { writeFileAtomic } from '@swarmpack/core'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import { deploymentSchema, type DeploymentConfig, type DeploymentConfigInput } from './schema.js'

export interface ConfigIssue {
  /** `sources.mirrors[1].url`; empty for the whole document. */
  path: string
  message: string
}

export function formatPath (path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`
    else if (typeof p === 'string' && /^[A-Za-z_$][\w$]*$/.test(p)) out += out === '' ? p : `.${p}`
    else out += `[${JSON.stringify(String(p))}]`
  }
  return out
}

/** Validates a config object; throws ERR_CONFIG_INVALID listing every issue. */
export function parseConfig (input: unknown, options: { file?: string } = {}): DeploymentConfig {
  const result = deploymentSchema.safeParse(input)
  if (!result.success) {
    const issues: ConfigIssue[] = []
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) issues.push({ path: formatPath([...issue.path, key]), message: 'unknown key' })
      } else {
        issues.push({ path: formatPath(issue.path), message: issue.message })
      }
    }
    const where = options.file !== undefined ? ` in ${options.file}` : ''
    const text = issues.map(i => `${i.path === '' ? '(document)' : i.path}: ${i.message}`).join('; ')
    throw nodeError(SwarmpackNodeErrorCode.CONFIG_INVALID, `invalid deployment config${where}: ${text}`, { issues, file: options.file })
  }
  const config = result.data
  if (options.file !== undefined) {
    const base = dirname(options.file)
    const abs = (p: string): string => isAbsolute(p) ? p : resolve(base, p)
    config.sources.directories = config.sources.directories.map(d => ({ ...d, path: abs(d.path) }))
    for (const ix of config.indexers) ix.heads.directories = ix.heads.directories.map(abs)
  }
  const ids = new Set<string>()
  config.indexers.forEach((ix, i) => {
    if (ids.has(ix.id)) throw nodeError(SwarmpackNodeErrorCode.CONFIG_INVALID, `invalid deployment config: indexers[${i}].id: indexer ${ix.id} is listed twice`, { issues: [{ path: `indexers[${i}].id`, message: 'duplicate indexer id' }] })
    ids.add(ix.id)
  })
  if (config.trust.indexerThreshold > config.indexers.length) {
    throw nodeError(SwarmpackNodeErrorCode.CONFIG_INVALID, 'invalid deployment config: trust.indexerThreshold: larger than the number of followed indexers', {
      issues: [{ path: 'trust.indexerThreshold', message: 'larger than the number of followed indexers' }]
    })
  }
  return config
}

/** Reads and validates a JSON config file. */
export async function loadConfigFile (file: string): Promise<DeploymentConfig> {
  const path = resolve(file)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw nodeError(SwarmpackNodeErrorCode.CONFIG_INVALID, `cannot read deployment config ${path}: ${(err as Error).message}`, { file: path, issues: [] }, err)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw nodeError(SwarmpackNodeErrorCode.CONFIG_INVALID, `deployment config ${path} is not JSON: ${(err as Error).message}`, { file: path, issues: [{ path: '', message: 'not JSON' }] }, err)
  }
  return parseConfig(json, { file: path })
}

/**
 * Rewrites the `modules` of a config file (install, uninstall), keeping every other key as the
 * user wrote it; atomic, so a crash leaves the old file or the new one.
 */
export async function writeModules (file: string, modules: DeploymentConfigInput['modules']): Promise<void> {
  const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
  json.modules = modules
  await writeFileAtomic(file, new TextEncoder().encode(JSON.stringify(json, null, 2) + '\n'))
}
