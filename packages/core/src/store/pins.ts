/**
 * The pins file: `{ "version": 1, "pins": { "<name>": "<root cid>" } }`, rewritten whole with an
 * atomic write on every change (pins change rarely; one small file keeps it simple and crash-safe).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { CoreErrorCode, SwarmpackError } from '../errors.js'
import { writeFileAtomic } from './atomic.js'
import { StoreErrorCode, errnoOf, ioError } from './errors.js'

export const PINS_FILE = 'pins.json'
const PINS_VERSION = 1
const MAX_PIN_NAME = 512

export function checkPinName (name: unknown): asserts name is string {
  // eslint-disable-next-line no-control-regex
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_PIN_NAME || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new SwarmpackError(CoreErrorCode.INVALID_ARGUMENT, `invalid pin name ${JSON.stringify(String(name).slice(0, 80))}`)
  }
}

export async function loadPins (dir: string): Promise<Map<string, CID>> {
  const path = join(dir, PINS_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return new Map()
    throw ioError(`cannot read ${path}`, err)
  }
  const corrupt = (why: string, cause?: unknown): SwarmpackError =>
    new SwarmpackError(StoreErrorCode.PINS_CORRUPT, `pins file ${path} is invalid: ${why}`, { cause, details: { path } })
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw corrupt('not JSON', err)
  }
  if (typeof doc !== 'object' || doc === null || (doc as { version?: unknown }).version !== PINS_VERSION) throw corrupt('unknown version')
  const pins = (doc as { pins?: unknown }).pins
  if (typeof pins !== 'object' || pins === null || Array.isArray(pins)) throw corrupt('no pins object')
  const out = new Map<string, CID>()
  for (const [name, value] of Object.entries(pins)) {
    try {
      checkPinName(name)
      if (typeof value !== 'string') throw new Error('root is not a string')
      out.set(name, CID.parse(value))
    } catch (err) {
      throw corrupt(`bad entry ${JSON.stringify(name.slice(0, 80))}`, err)
    }
  }
  return out
}

export async function savePins (dir: string, pins: Map<string, CID>, fsync: boolean): Promise<void> {
  const doc = { version: PINS_VERSION, pins: Object.fromEntries([...pins].map(([name, cid]) => [name, cid.toString()])) }
  try {
    await writeFileAtomic(join(dir, PINS_FILE), new TextEncoder().encode(JSON.stringify(doc, null, 1) + '\n'), { fsync })
  } catch (err) {
    throw ioError('cannot write the pins file', err)
  }
}
