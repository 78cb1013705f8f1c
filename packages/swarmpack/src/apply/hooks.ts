/**
 * Host hooks: `load` and `unload` for each affected module, each bounded in time. A hook that
 * throws or overruns its bound fails with ERR_HOOK_FAILED / ERR_HOOK_TIMEOUT (its signal is
 * aborted, so a cooperative hook can stop); the caller decides what to undo.
 */
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import type { InstalledPackage } from './generations.js'

export interface HookPackage {
  name: string
  version: string
  /** Absolute install directory (immutable). */
  path: string
  /** Absolute path of the entry point, when the package names one. */
  entry?: string
  /** Names and versions of the packages it depends on. */
  dependencies: Array<{ name: string, version: string }>
  root: string
}

export interface HookContext {
  /** The generation being switched to (load) or away from (unload). */
  generation: number
  /** Why: an apply, its undo after a failure, a rollback, or loading the current generation at start. */
  reason: 'apply' | 'undo' | 'rollback' | 'start'
  /** Aborted when the hook's time is up. */
  signal: AbortSignal
}

export interface HostHooks {
  load?: (pkg: HookPackage, ctx: HookContext) => void | Promise<void>
  unload?: (pkg: HookPackage, ctx: HookContext) => void | Promise<void>
}

export function hookPackage (p: InstalledPackage, all: Record<string, InstalledPackage>): HookPackage {
  const out: HookPackage = {
    name: p.name,
    version: p.version,
    path: p.path,
    root: p.root,
    dependencies: p.dependencies.map(d => ({ name: d, version: all[d]?.version ?? '' }))
  }
  if (p.entry !== undefined) out.entry = `${p.path}/${p.entry}`
  return out
}

export async function runHook (kind: 'load' | 'unload', fn: HostHooks['load'], pkg: HookPackage, ctx: Omit<HookContext, 'signal'>, timeoutMs: number): Promise<void> {
  if (fn === undefined) return
  const controller = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = nodeError(SwarmpackNodeErrorCode.HOOK_TIMEOUT, `${kind} hook of ${pkg.name}@${pkg.version} did not finish within ${timeoutMs} ms`, { hook: kind, name: pkg.name, version: pkg.version, timeoutMs })
      controller.abort(err)
      reject(err)
    }, timeoutMs)
  })
  try {
    await Promise.race([Promise.resolve().then(async () => fn(pkg, { ...ctx, signal: controller.signal })), timeout])
  } catch (err) {
    if ((err as { code?: string }).code === SwarmpackNodeErrorCode.HOOK_TIMEOUT && controller.signal.aborted) throw err
    throw nodeError(SwarmpackNodeErrorCode.HOOK_FAILED, `${kind} hook of ${pkg.name}@${pkg.version} failed: ${(err as Error)?.message ?? String(err)}`, { hook: kind, name: pkg.name, version: pkg.version }, err)
  } finally {
    clearTimeout(timer)
  }
}
