/** Parsing what users type: `name@range`, `@scope/name@range`, CIDs. */
import { CID } from 'multiformats/cid'
import { CliError } from './context.js'

/** `a@^1.2`, `@s/a@1.0.0`, `a` (range `*`). */
export function splitSpec (spec: string): { name: string, range: string } {
  const at = spec.lastIndexOf('@')
  if (at <= 0) return { name: spec, range: '*' }
  const name = spec.slice(0, at)
  const range = spec.slice(at + 1)
  if (name === '' || range === '') throw new CliError('ERR_USAGE', `not a name@range: ${JSON.stringify(spec)}`)
  return { name, range }
}

export function parseCid (text: string): CID {
  try {
    return CID.parse(text)
  } catch {
    throw new CliError('ERR_USAGE', `not a CID: ${JSON.stringify(text.slice(0, 100))}`)
  }
}
