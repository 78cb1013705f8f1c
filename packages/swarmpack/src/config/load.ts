/**
 * Loading and validating the deployment config, from an object or a JSON file. Every problem is
 * reported at once in one ERR_CONFIG_INVALID whose message names each path as it appears in the
 * file (`sources.mirrors[1].url`), and relative directory paths are resolved against the file.
 * Files may carry comments and trailing commas (JSONC, read with jsonc-parser); edits made by the
 * node (install's `modules`, follow's indexers) change only their own keys and keep the rest of
 * the text, comments included.
 */
import { readFile } from 'node:fs/promises'
import { applyEdits, modify, parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser'
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
  if (config.indexers.length > 0 && config.trust.indexerThreshold > config.indexers.length) {
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
  return parseConfig(parseConfigText(text, path), { file: path })
}

/** JSON with comments and trailing commas; ERR_CONFIG_INVALID naming the line of the first error. */
export function parseConfigText (text: string, path: string): unknown {
  const errors: ParseError[] = []
  const json: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false })
  if (errors.length > 0) {
    const e = errors[0]
    const line = text.slice(0, e.offset).split('\n').length
    throw nodeError(SwarmpackNodeErrorCode.CONFIG_INVALID, `deployment config ${path} is not JSON: ${printParseErrorCode(e.error)} at line ${line}`, { file: path, issues: [{ path: '', message: `not JSON (line ${line})` }] })
  }
  return json
}

/**
 * Sets one key of a config file (`['modules']`, `['indexers']`), keeping the other keys, the
 * comments and the formatting; the result must still be a valid config, else nothing is written
 * (ERR_CONFIG_INVALID). Atomic: a crash leaves the old file or the new one.
 */
export async function editConfigFile (file: string, path: Array<string | number>, value: unknown): Promise<DeploymentConfig> {
  const text = await readFile(file, 'utf8')
  parseConfigText(text, file)
  const edited = applyEdits(text, modify(text, path, value, { formattingOptions: { insertSpaces: true, tabSize: 2, eol: '\n' } }))
  const config = parseConfig(parseConfigText(edited, file), { file })
  await writeFileAtomic(file, new TextEncoder().encode(edited.endsWith('\n') ? edited : edited + '\n'))
  return config
}

/**
 * Rewrites the `modules` of a config file (install, uninstall), keeping every other key as the
 * user wrote it; atomic, so a crash leaves the old file or the new one.
 */
export async function writeModules (file: string, modules: DeploymentConfigInput['modules']): Promise<void> {
  await editConfigFile(file, ['modules'], modules)
}
