/**
 * The lockfile `swarmpack.lock`: deterministic JSON (sorted keys, two-space indent, final newline)
 * that pins a deployment exactly.
 *
 *   {
 *     "lockfileVersion": 1,
 *     "configDigest": "sha256:…",        // what the lock was resolved for (see config/digest.ts)
 *     "platform": "linux-x64",
 *     "modules": { "a": "^1.0.0" },       // the wanted ranges (and variants) it was resolved from
 *     "indexes": [{ "id": "main", "version": 7, "root": "bafy…" }],   // heads it was resolved against
 *     "packages": {
 *       "a@1.1.0": { "variant": "any", "release": "bafy…", "manifest": "bafy…", "size": 1234,
 *                    "dependencies": { "b": "^1" }, "resolved": { "b": "1.0.0" } }
 *     }
 *   }
 *
 * `dependencies` are the ranges the signed release states; `resolved` the versions chosen for them,
 * so load order and dependents can be computed from the lock alone.
 */
import { CID } from 'multiformats/cid'
import { z } from 'zod'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import { formatPath } from '../config/load.js'
import { canonicalJson } from '../util/json.js'

export const LOCKFILE_VERSION = 1
export const LOCKFILE_NAME = 'swarmpack.lock'

const cid = z.string().refine(s => { try { CID.parse(s); return true } catch { return false } }, { message: 'not a CID' })

const lockedPackage = z.strictObject({
  variant: z.string().min(1),
  release: cid,
  manifest: cid,
  size: z.int().min(0),
  dependencies: z.record(z.string(), z.string()),
  resolved: z.record(z.string(), z.string())
})

const lockSchema = z.strictObject({
  lockfileVersion: z.literal(LOCKFILE_VERSION),
  configDigest: z.string().min(1),
  platform: z.string().min(1),
  modules: z.record(z.string(), z.union([z.string(), z.strictObject({ range: z.string(), variant: z.string().optional() })])),
  indexes: z.array(z.strictObject({ id: z.string(), version: z.int().min(0), root: cid })),
  packages: z.record(z.string().regex(/^(@[^@/]+\/)?[^@/]+@[^@]+$/, { message: 'keys are name@version' }), lockedPackage)
})

export type Lockfile = z.output<typeof lockSchema>
export type LockedPackage = z.output<typeof lockedPackage>

/** One package of a lock with its name and version split out. */
export interface LockEntry extends LockedPackage {
  name: string
  version: string
  key: string
}

export function packageKey (name: string, version: string): string {
  return `${name}@${version}`
}

export function splitKey (key: string): { name: string, version: string } {
  const at = key.lastIndexOf('@')
  return { name: key.slice(0, at), version: key.slice(at + 1) }
}

export function lockEntries (lock: Lockfile): LockEntry[] {
  return Object.entries(lock.packages).map(([key, p]) => ({ ...p, ...splitKey(key), key })).sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
}

/** The lock as its file text. */
export function serializeLock (lock: Lockfile): string {
  return canonicalJson(lock, 2) + '\n'
}

/** Parses and validates lockfile text; ERR_LOCK_INVALID naming the path of each problem. */
export function parseLock (text: string, where = LOCKFILE_NAME): Lockfile {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw nodeError(SwarmpackNodeErrorCode.LOCK_INVALID, `${where} is not JSON`, { file: where }, err)
  }
  const r = lockSchema.safeParse(json)
  if (!r.success) {
    const issues = r.error.issues.map(i => `${formatPath(i.path) || '(document)'}: ${i.message}`)
    throw nodeError(SwarmpackNodeErrorCode.LOCK_INVALID, `${where} is not a valid lockfile: ${issues.join('; ')}`, { file: where, issues })
  }
  const lock = r.data
  // every resolved dependency must be a package of the lock: a lock is a closed set
  for (const [key, p] of Object.entries(lock.packages)) {
    for (const [dep, version] of Object.entries(p.resolved)) {
      if (lock.packages[packageKey(dep, version)] === undefined) {
        throw nodeError(SwarmpackNodeErrorCode.LOCK_INVALID, `${where}: ${key} depends on ${dep}@${version}, which the lock does not hold`, { file: where })
      }
    }
  }
  return lock
}

/** Dependency order (dependencies before dependents; ties by name); cycles are broken by name. */
export function loadOrder (packages: ReadonlyArray<{ name: string, deps: readonly string[] }>): string[] {
  const byName = new Map(packages.map(p => [p.name, p]))
  const done = new Set<string>()
  const visiting = new Set<string>()
  const out: string[] = []
  const visit = (name: string): void => {
    if (done.has(name) || visiting.has(name)) return
    const p = byName.get(name)
    if (p === undefined) return
    visiting.add(name)
    for (const d of [...p.deps].sort()) visit(d)
    visiting.delete(name)
    done.add(name)
    out.push(name)
  }
  for (const name of [...byName.keys()].sort()) visit(name)
  return out
}
