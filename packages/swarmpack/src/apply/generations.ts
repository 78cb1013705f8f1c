/**
 * Generations on disk, the way Nix profiles work: each deployment that was applied is a numbered
 * directory `generations/<N>/` holding `generation.json` (the lock it was built from, every
 * package's root and install path, the load order), and `current` is a symlink to one of them.
 * Switching writes a new symlink next to `current` and renames it over the old one: rename(2) is
 * atomic, so a crash leaves `current` at the old generation or the new one, never in between.
 * Package files live in immutable per-root directories (`packages/<manifest CID>/`) that several
 * generations share; a directory is only ever created whole (unpack stages, then renames).
 */
import { mkdir, readdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { writeFileAtomic } from '@swarmpack/core'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import { parseLock, serializeLock, type Lockfile } from '../lock/format.js'
import { canonicalJson } from '../util/json.js'

export interface InstalledPackage {
  name: string
  version: string
  /** Manifest root CID: the package's identity and its directory name. */
  root: string
  release: string
  variant: string
  /** Absolute install path (`<dataDir>/packages/<root>`). */
  path: string
  /** Entry point relative to `path`, when the manifest names one. */
  entry?: string
  /** Names of the packages it depends on (within the generation). */
  dependencies: string[]
  size: number
}

export interface Generation {
  number: number
  created: number
  /** The lock it was built from (also written as `swarmpack.lock` while it is current). */
  lock: Lockfile
  packages: Record<string, InstalledPackage>
  /** Names in dependency order: dependencies first. */
  loadOrder: string[]
}

export const GENERATION_FILE = 'generation.json'

export class Generations {
  readonly dir: string
  readonly currentLink: string
  readonly packagesDir: string

  constructor (readonly dataDir: string) {
    this.dir = join(dataDir, 'generations')
    this.currentLink = join(dataDir, 'current')
    this.packagesDir = join(dataDir, 'packages')
  }

  async init (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    await mkdir(this.packagesDir, { recursive: true })
  }

  pathOf (n: number): string {
    return join(this.dir, String(n))
  }

  packagePath (root: string): string {
    return join(this.packagesDir, root)
  }

  async numbers (): Promise<number[]> {
    const names = await readdir(this.dir).catch(() => [] as string[])
    return names.filter(n => /^[1-9]\d*$/.test(n)).map(Number).sort((a, b) => a - b)
  }

  async read (n: number): Promise<Generation> {
    let text: string
    try {
      text = await readFile(join(this.pathOf(n), GENERATION_FILE), 'utf8')
    } catch (err) {
      throw nodeError(SwarmpackNodeErrorCode.GENERATION_NOT_FOUND, `generation ${n} does not exist`, { generation: n }, err)
    }
    try {
      const g = JSON.parse(text) as Generation
      g.lock = parseLock(serializeLock(g.lock), `generation ${n}`)
      return g
    } catch (err) {
      throw nodeError(SwarmpackNodeErrorCode.DATA_DIR_CORRUPT, `generation ${n} is unreadable`, { generation: n }, err)
    }
  }

  /** Every generation that can be read, oldest first. */
  async list (): Promise<Generation[]> {
    const out: Generation[] = []
    for (const n of await this.numbers()) {
      try { out.push(await this.read(n)) } catch { /* a half-written staging dir: recovery removes it */ }
    }
    return out
  }

  /** The generation `current` points at, or undefined before the first apply. */
  async currentNumber (): Promise<number | undefined> {
    let target: string
    try {
      target = await readlink(this.currentLink)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    const m = /(?:^|\/)generations\/([1-9]\d*)$/.exec(target)
    if (m === null) throw nodeError(SwarmpackNodeErrorCode.DATA_DIR_CORRUPT, `current points at ${target}, not a generation`)
    return Number(m[1])
  }

  async current (): Promise<Generation | undefined> {
    const n = await this.currentNumber()
    return n === undefined ? undefined : this.read(n)
  }

  async nextNumber (): Promise<number> {
    const all = await this.numbers()
    return (all.at(-1) ?? 0) + 1
  }

  /** Writes generation N's manifest (the directory must not hold one yet). */
  async write (g: Generation): Promise<void> {
    await mkdir(this.pathOf(g.number), { recursive: true })
    await writeFileAtomic(join(this.pathOf(g.number), GENERATION_FILE), new TextEncoder().encode(canonicalJson(g, 2) + '\n'), { syncDir: true })
  }

  /** Points `current` at generation n (or removes it: undefined), atomically. */
  async switchTo (n: number | undefined): Promise<void> {
    if (n === undefined) {
      await rm(this.currentLink, { force: true })
      return
    }
    const tmp = join(this.dataDir, `.current-${randomBytes(6).toString('hex')}`)
    await symlink(join('generations', String(n)), tmp)
    try {
      await rename(tmp, this.currentLink)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
  }

  async remove (n: number): Promise<void> {
    await rm(this.pathOf(n), { recursive: true, force: true })
  }

  /** Package directories no kept generation uses, and leftovers of interrupted unpacks. */
  async unusedPackageDirs (kept: Generation[]): Promise<string[]> {
    const used = new Set(kept.flatMap(g => Object.values(g.packages).map(p => p.root)))
    const names = await readdir(this.packagesDir).catch(() => [] as string[])
    return names.filter(n => !used.has(n)).map(n => join(this.packagesDir, n))
  }

  /** Removes `.current-*` links left by a crash between symlink and rename. */
  async sweep (): Promise<void> {
    for (const name of await readdir(this.dataDir).catch(() => [] as string[])) {
      if (name.startsWith('.current-')) await rm(join(this.dataDir, name), { force: true })
    }
  }
}
