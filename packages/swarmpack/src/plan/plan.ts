/**
 * plan: what applying a lock would change, computed before anything is fetched. A pure diff
 * against the current generation (it reads the local block store to count what is already
 * there, and writes nothing): each package added, removed, replaced or unchanged; the modules to
 * unload (dependents first) and load (dependencies first); and the bytes to fetch.
 */
import { CID } from 'multiformats/cid'
import { decodeManifest, type Manifest } from '@swarmpack/core'
import type { Generation } from '../apply/generations.js'
import { lockEntries, loadOrder, type Lockfile } from '../lock/format.js'

export type PlanAction = 'add' | 'remove' | 'replace' | 'unchanged'

export interface PlanChange {
  name: string
  action: PlanAction
  from?: { version: string, root: string }
  to?: { version: string, root: string, release: string, variant: string, size: number }
  /** Bytes of this package not in the local store (exact when its manifest is local, else its size). */
  fetchBytes: number
}

export interface Plan {
  lock: Lockfile
  /** The generation the plan was computed against (undefined: none yet). */
  from?: number
  changes: PlanChange[]
  /** Dependents first. */
  unload: string[]
  /** Dependencies first. */
  load: string[]
  bytes: {
    /** Size of every package that is added or replaced. */
    total: number
    /** What must come from the network (chunks shared with held packages are not counted twice). */
    fetch: number
    /** False when some manifest was not local, so its whole size was counted. */
    exact: boolean
  }
  /** True when nothing changes. */
  empty: boolean
}

export interface LocalBlocks {
  has: (cid: CID) => boolean | Promise<boolean>
  get: (cid: CID, options?: { signal?: AbortSignal }) => Promise<Uint8Array>
}

function closure (start: Iterable<string>, dependents: Map<string, string[]>): Set<string> {
  const out = new Set<string>()
  const stack = [...start]
  while (stack.length > 0) {
    const n = stack.pop() as string
    if (out.has(n)) continue
    out.add(n)
    for (const d of dependents.get(n) ?? []) stack.push(d)
  }
  return out
}

function dependentsOf (pkgs: Array<{ name: string, deps: string[] }>): Map<string, string[]> {
  const m = new Map<string, string[]>()
  for (const p of pkgs) for (const d of p.deps) m.set(d, [...(m.get(d) ?? []), p.name])
  return m
}

async function localManifest (root: CID, local: LocalBlocks): Promise<Manifest | undefined> {
  if (!(await local.has(root))) return undefined
  try {
    // the local store only: a page that is not here means "not exact", never a network fetch
    return await decodeManifest(root, { get: async (cid, o) => { if (!(await local.has(cid))) throw new Error('not local'); return local.get(cid, o) } })
  } catch {
    return undefined
  }
}

export async function computePlan (lock: Lockfile, current: Generation | undefined, local: LocalBlocks): Promise<Plan> {
  const next = lockEntries(lock)
  const old = current?.packages ?? {}
  const changes: PlanChange[] = []
  const nextNames = new Set(next.map(e => e.name))
  let total = 0
  let fetch = 0
  let exact = true
  const counted = new Set<string>()
  for (const e of next) {
    const was = old[e.name]
    const to = { version: e.version, root: e.manifest, release: e.release, variant: e.variant, size: e.size }
    let action: PlanAction = 'add'
    if (was !== undefined) action = was.root === e.manifest && was.version === e.version ? 'unchanged' : 'replace'
    let fetchBytes = 0
    if (action !== 'unchanged') {
      total += e.size
      const manifest = await localManifest(CID.parse(e.manifest), local)
      if (manifest === undefined) {
        exact = false
        fetchBytes = e.size
      } else {
        for (const entry of manifest.entries) {
          if (entry.type !== 'file') continue
          for (const [cid, size] of entry.chunks) {
            const k = cid.toString()
            if (counted.has(k)) continue
            counted.add(k)
            if (!(await local.has(cid))) fetchBytes += size
          }
        }
      }
      fetch += fetchBytes
    }
    const change: PlanChange = { name: e.name, action, to, fetchBytes }
    if (was !== undefined) change.from = { version: was.version, root: was.root }
    changes.push(change)
  }
  for (const p of Object.values(old)) {
    if (!nextNames.has(p.name)) changes.push({ name: p.name, action: 'remove', from: { version: p.version, root: p.root }, fetchBytes: 0 })
  }
  changes.sort((a, b) => a.name < b.name ? -1 : 1)

  // unload: removed and replaced modules and everything that depends on them (old graph)
  const oldGraph = Object.values(old).map(p => ({ name: p.name, deps: p.dependencies }))
  const unloadSet = closure(changes.filter(c => c.action === 'remove' || c.action === 'replace').map(c => c.name), dependentsOf(oldGraph))
  const unload = [...(current?.loadOrder ?? [])].reverse().filter(n => unloadSet.has(n))
  // load: added and replaced modules, whatever was unloaded and stays, and their dependents (new graph)
  const newGraph = next.map(e => ({ name: e.name, deps: Object.keys(e.resolved) }))
  const loadStart = [...changes.filter(c => c.action === 'add' || c.action === 'replace').map(c => c.name), ...[...unloadSet].filter(n => nextNames.has(n))]
  const loadSet = closure(loadStart, dependentsOf(newGraph))
  const load = loadOrder(newGraph).filter(n => loadSet.has(n))
  const plan: Plan = {
    lock,
    changes,
    unload,
    load,
    bytes: { total, fetch, exact },
    empty: changes.every(c => c.action === 'unchanged')
  }
  if (current !== undefined) plan.from = current.number
  return plan
}
