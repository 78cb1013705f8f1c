/**
 * Scrub (R5): on a schedule and on demand, check that what the node holds is what it should.
 *
 * 1. The store: every block re-hashed against its CID; corrupt ones are removed, and those a pin
 *    needs (installed, locked, index blocks) are fetched again from the sources (peers, mirrors).
 * 2. Installed packages: every file, directory and link of every kept generation's package
 *    directories compared with its manifest (type, size, executable bit, each chunk's hash); a
 *    modified or deleted file is restored from the store (missing chunks fetched), atomically.
 * 3. The followed indexes: after following them, every installed release is checked again by
 *    trust; a revoked or removed one is reported and, with `scrub.revoked: 'uninstall'`, the
 *    wanted modules that use it are uninstalled.
 *
 * Reads go through a byte-rate limit (`scrub.rateBytesPerSec`) so a scrub does not starve the host.
 */
import { randomBytes } from 'node:crypto'
import { chmod, lstat, mkdir, open, readdir, readlink, rename, rm, symlink } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { CID } from 'multiformats/cid'
import { CustomProgressEvent } from 'progress-events'
import { chunkCid, decodeManifest, isSwarmpackError, throwIfAborted, verifyBlock, type BlockGetter, type FileEntry, type Manifest } from '@swarmpack/core'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import type { Generation, InstalledPackage } from '../apply/generations.js'
import type { OpsHost } from './host.js'
import { Throttle } from './throttle.js'

export interface ScrubOptions {
  signal?: AbortSignal
  onProgress?: (evt: CustomProgressEvent<any>) => void
  /** Re-hash the store (default true). */
  store?: boolean
  /** Check installed files against their manifests (default true). */
  installed?: boolean
  /** Follow the indexes and check installed releases against them (default true). */
  indexes?: boolean
  /** Restore modified or deleted files (default `scrub.restore`). */
  restore?: boolean
  /** What to do about revoked or removed releases (default `scrub.revoked`). */
  revoked?: 'report' | 'uninstall'
  /** Read rate limit in bytes/s (default `scrub.rateBytesPerSec`). */
  rateBytesPerSec?: number
}

export type FileProblem = 'modified' | 'deleted' | 'mode' | 'type'

export interface FileFinding {
  name: string
  version: string
  /** Package directory and the path inside it. */
  dir: string
  path: string
  problem: FileProblem
  restored: boolean
  error?: { code: string, message: string }
}

export interface ReleaseFinding {
  name: string
  version: string
  root: string
  /** `revoked` (key or certificate revoked), `removed` (tombstoned or no longer listed), `refused` (another trust rule). */
  problem: 'revoked' | 'removed' | 'refused'
  /** Trust's code (ERR_TRUST_REVOKED, ERR_TRUST_NOT_LISTED, ...). */
  trustCode: string
  /** The node's code for it (ERR_PACKAGE_REVOKED, ERR_PACKAGE_REMOVED, ERR_TRUST_REFUSED). */
  code: string
  message: string
}

export interface ScrubReport {
  started: number
  ms: number
  store: {
    checked: number
    bytes: number
    corrupt: Array<{ cid: string, reason: string }>
    /** Pinned blocks that were missing or corrupt and came back from a source. */
    refetched: string[]
    /** Pinned blocks no source could supply. */
    unrecoverable: Array<{ cid: string, code: string, message: string }>
  }
  installed: {
    packages: number
    files: number
    bytes: number
    findings: FileFinding[]
    /** Files in a package directory that its manifest does not list (reported, left alone). */
    extra: Array<{ name: string, version: string, path: string }>
    /** Packages whose manifest could not be read from the store or any source. */
    unchecked: Array<{ name: string, version: string, code: string, message: string }>
  }
  indexes: {
    checked: number
    follow: Array<{ indexer: string, version?: number, error?: string }>
    findings: ReleaseFinding[]
    /** Wanted modules uninstalled because of a finding (policy `uninstall`). */
    uninstalled: string[]
    /** Releases that could not be checked (index blocks unavailable ...). */
    unchecked: Array<{ name: string, version: string, code: string, message: string }>
  }
  /** Time spent waiting for the rate limit. */
  throttledMs: number
  ok: boolean
}

function emptyReport (): ScrubReport {
  return {
    started: Date.now(),
    ms: 0,
    store: { checked: 0, bytes: 0, corrupt: [], refetched: [], unrecoverable: [] },
    installed: { packages: 0, files: 0, bytes: 0, findings: [], extra: [], unchecked: [] },
    indexes: { checked: 0, follow: [], findings: [], uninstalled: [], unchecked: [] },
    throttledMs: 0,
    ok: true
  }
}

function emit (options: ScrubOptions, type: string, detail: unknown): void {
  options.onProgress?.(new CustomProgressEvent(type, detail))
}

/** Collects a getAll pair's bytes (one chunk from FsBlockstore; an async iterable in other stores). */
async function pairBytes (bytes: unknown): Promise<Uint8Array> {
  if (bytes instanceof Uint8Array) return bytes
  const chunks: Uint8Array[] = []
  for await (const c of bytes as AsyncIterable<Uint8Array>) chunks.push(c)
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  let off = 0
  for (const c of chunks) { out.set(c, off); off += c.byteLength }
  return out
}

/** 1. Re-hash every block; remove corrupt ones; fetch back what pins need. */
async function scrubStore (host: OpsHost, report: ScrubReport, throttle: Throttle, options: ScrubOptions): Promise<void> {
  const { store, fetcher } = host.node
  const signal = options.signal
  // blocks the store itself drops while we read (a size mismatch is caught by its read path)
  const dropped = new Map<string, CID>()
  const yielded = new Set<string>()
  const onRemoved = (evt: Event): void => {
    const cid = (evt as CustomEvent<{ cid: CID }>).detail?.cid
    if (cid !== undefined) dropped.set(cid.multihash.toString(), cid)
  }
  store.addEventListener('block:removed', onRemoved)
  const total = store.stats().blocks
  try {
    for await (const pair of store.getAll(signal !== undefined ? { signal } : {})) {
      throwIfAborted(signal)
      const bytes = await pairBytes(pair.bytes)
      yielded.add(pair.cid.multihash.toString())
      report.store.checked++
      report.store.bytes += bytes.byteLength
      let reason: string | undefined
      try { verifyBlock(pair.cid, bytes) } catch (err) { reason = (err as Error).message }
      if (reason !== undefined) {
        report.store.corrupt.push({ cid: pair.cid.toString(), reason })
        // a verifying read has the store remove it (so it can be fetched again)
        await store.getBytes(pair.cid, { verify: true, touch: false }).catch(() => {})
      }
      if (report.store.checked % 256 === 0 || reason !== undefined) emit(options, 'swarmpack:scrub:store', { checked: report.store.checked, total, bytes: report.store.bytes, corrupt: report.store.corrupt.length })
      await throttle.take(bytes.byteLength, signal)
    }
  } finally {
    store.removeEventListener('block:removed', onRemoved)
  }
  for (const [key, cid] of dropped) {
    if (!yielded.has(key) && !report.store.corrupt.some(c => c.cid === cid.toString())) {
      report.store.corrupt.push({ cid: cid.toString(), reason: 'removed by the store while reading (size or read error)' })
    }
  }
  // everything a pin reaches must be here: fetch what is missing (just removed, or never arrived)
  for (const cid of await store.missingPinned()) {
    throwIfAborted(signal)
    try {
      await fetcher.getBlock(cid, signal !== undefined ? { signal } : {})
      report.store.refetched.push(cid.toString())
      emit(options, 'swarmpack:scrub:refetched', { cid: cid.toString() })
    } catch (err) {
      if (isSwarmpackError(err, 'ERR_ABORTED')) throw err
      const e = nodeError(SwarmpackNodeErrorCode.BLOCK_UNRECOVERABLE, `pinned block ${cid.toString()} is missing and no source has it: ${(err as Error).message}`, { cid: cid.toString() }, err)
      report.store.unrecoverable.push({ cid: cid.toString(), code: e.code, message: e.message })
    }
  }
}

/** A chunk getter that reads the store and falls back to the node's sources. */
function chunkGetter (host: OpsHost): BlockGetter {
  return { get: async (cid, o) => host.node.fetcher.getBlock(cid, o?.signal !== undefined ? { signal: o.signal } : {}) }
}

/** Compares one file with its entry, reading chunk by chunk; undefined when it matches. */
async function checkFile (abs: string, e: FileEntry, throttle: Throttle, signal: AbortSignal | undefined): Promise<FileProblem | undefined> {
  let st
  try { st = await lstat(abs) } catch { return 'deleted' }
  if (!st.isFile()) return 'type'
  if (st.size !== e.size) return 'modified'
  const fh = await open(abs, 'r')
  try {
    let pos = 0
    let buf = new Uint8Array(0)
    for (const [cid, size] of e.chunks) {
      throwIfAborted(signal)
      if (buf.byteLength < size) buf = new Uint8Array(size)
      const view = buf.subarray(0, size)
      const { bytesRead } = await fh.read(view, 0, size, pos)
      if (bytesRead !== size || !chunkCid(view).equals(cid)) return 'modified'
      pos += size
      await throttle.take(size, signal)
    }
  } finally {
    await fh.close()
  }
  if (((st.mode & 0o111) !== 0) !== ((e.mode & 0o111) !== 0)) return 'mode'
  return undefined
}

/** Writes a file from its chunks next to its place, then renames it over (atomic). */
async function restoreFile (abs: string, e: FileEntry, getter: BlockGetter, signal: AbortSignal | undefined): Promise<void> {
  await mkdir(dirname(abs), { recursive: true, mode: 0o755 })
  const tmp = join(dirname(abs), `.swarmpack-restore-${randomBytes(6).toString('hex')}`)
  try {
    const fh = await open(tmp, 'wx', 0o600)
    try {
      for (const [cid, size] of e.chunks) {
        const bytes = await getter.get(cid, signal !== undefined ? { signal } : {})
        verifyBlock(cid, bytes)
        if (bytes.byteLength !== size) throw new Error(`chunk ${cid.toString()} has ${bytes.byteLength} bytes, the manifest says ${size}`)
        await fh.write(bytes)
      }
      await fh.datasync()
    } finally {
      await fh.close()
    }
    await chmod(tmp, e.mode)
    const st = await lstat(abs).catch(() => undefined)
    if (st?.isDirectory() === true) await rm(abs, { recursive: true, force: true })
    await rename(tmp, abs)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {})
    throw err
  }
}

async function listTree (dir: string, base = dir, out: string[] = []): Promise<string[]> {
  for (const ent of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, ent.name)
    out.push(relative(base, p))
    if (ent.isDirectory()) await listTree(p, base, out)
  }
  return out
}

/** 2. Installed files against their manifests; restore what differs. */
async function scrubInstalled (host: OpsHost, report: ScrubReport, throttle: Throttle, options: ScrubOptions, restore: boolean): Promise<void> {
  const signal = options.signal
  const getter = chunkGetter(host)
  const seen = new Set<string>()
  const packages: InstalledPackage[] = []
  for (const g of await host.node.generations.list()) {
    for (const p of Object.values(g.packages)) if (!seen.has(p.root)) { seen.add(p.root); packages.push(p) }
  }
  for (const p of packages) {
    throwIfAborted(signal)
    report.installed.packages++
    let manifest: Manifest
    try {
      manifest = await decodeManifest(CID.parse(p.root), getter, signal !== undefined ? { signal } : {})
    } catch (err) {
      if (isSwarmpackError(err, 'ERR_ABORTED')) throw err
      report.installed.unchecked.push({ name: p.name, version: p.version, code: (err as { code?: string }).code ?? 'ERR_UNKNOWN', message: `manifest unavailable: ${(err as Error).message}` })
      continue
    }
    const listed = new Set<string>()
    for (const e of manifest.entries) {
      listed.add(e.path)
      const abs = join(p.path, e.path)
      let problem: FileProblem | undefined
      if (e.type === 'file') {
        report.installed.files++
        report.installed.bytes += e.size
        problem = await checkFile(abs, e, throttle, signal)
      } else if (e.type === 'dir') {
        const st = await lstat(abs).catch(() => undefined)
        problem = st === undefined ? 'deleted' : st.isDirectory() ? undefined : 'type'
      } else {
        const target = await readlink(abs).catch(() => undefined)
        problem = target === undefined ? 'deleted' : target === e.target ? undefined : 'modified'
      }
      if (problem === undefined) continue
      const finding: FileFinding = { name: p.name, version: p.version, dir: p.path, path: e.path, problem, restored: false }
      if (restore) {
        try {
          if (e.type === 'file') await restoreFile(abs, e, getter, signal)
          else if (e.type === 'dir') { await rm(abs, { force: true }); await mkdir(abs, { recursive: true, mode: 0o755 }) } else { await rm(abs, { recursive: true, force: true }); await symlink(e.target, abs) }
          finding.restored = true
        } catch (err) {
          if (isSwarmpackError(err, 'ERR_ABORTED')) throw err
          const e2 = nodeError(SwarmpackNodeErrorCode.FILE_RESTORE_FAILED, `cannot restore ${abs}: ${(err as Error).message}`, { path: abs }, err)
          finding.error = { code: e2.code, message: e2.message }
        }
      }
      report.installed.findings.push(finding)
      emit(options, 'swarmpack:scrub:file', finding)
      host.log.write(finding.restored ? 'warn' : 'error', 'scrub:file', { ...finding, code: SwarmpackNodeErrorCode.FILE_MODIFIED })
    }
    for (const rel of await listTree(p.path)) {
      if (!listed.has(rel) && !rel.includes('.swarmpack-restore-')) report.installed.extra.push({ name: p.name, version: p.version, path: rel })
    }
  }
}

/** Wanted modules whose installed closure contains one of `names`. */
export function affectedModules (g: Generation, wanted: string[], names: Set<string>): string[] {
  const reaches = (n: string, seen = new Set<string>()): boolean => {
    if (names.has(n)) return true
    if (seen.has(n)) return false
    seen.add(n)
    return (g.packages[n]?.dependencies ?? []).some(d => reaches(d, seen))
  }
  return wanted.filter(m => g.packages[m] !== undefined && reaches(m))
}

/** 3. Installed releases against the (freshly followed) indexes. */
async function scrubIndexes (host: OpsHost, report: ScrubReport, options: ScrubOptions, attestations: ((name: string, version: string, manifest: CID) => Promise<Uint8Array[]>) | undefined): Promise<void> {
  const { node } = host
  const signal = options.signal
  // a node that follows no indexer (publishing or serving only) has nothing to compare with
  if (node.config.indexers.length === 0) return
  const follow = await node.follow(signal !== undefined ? { signal } : {})
  report.indexes.follow = follow.map(f => ({ indexer: f.indexer, ...(f.version !== undefined ? { version: f.version } : {}), ...(f.error !== undefined ? { error: `${f.error.code}: ${f.error.message}` } : {}) }))
  const g = await node.generations.current()
  if (g === undefined) return
  for (const p of Object.values(g.packages)) {
    throwIfAborted(signal)
    report.indexes.checked++
    try {
      const manifest = CID.parse(p.root)
      await node.verifier.checkInstallable(p.name, p.version, manifest, {
        variant: p.variant,
        attestations: await attestations?.(p.name, p.version, manifest) ?? [],
        ...(signal !== undefined ? { signal } : {})
      })
    } catch (err) {
      if (!isSwarmpackError(err) || err.code === 'ERR_ABORTED') throw err
      const trustCode = err.code
      if (!trustCode.startsWith('ERR_TRUST_') || trustCode === 'ERR_TRUST_MISSING_BLOCK') {
        report.indexes.unchecked.push({ name: p.name, version: p.version, code: trustCode, message: err.message })
        continue
      }
      const problem = trustCode === 'ERR_TRUST_REVOKED' ? 'revoked' : trustCode === 'ERR_TRUST_NOT_LISTED' ? 'removed' : 'refused'
      const code = problem === 'revoked' ? SwarmpackNodeErrorCode.PACKAGE_REVOKED : problem === 'removed' ? SwarmpackNodeErrorCode.PACKAGE_REMOVED : SwarmpackNodeErrorCode.TRUST_REFUSED
      const finding: ReleaseFinding = { name: p.name, version: p.version, root: p.root, problem, trustCode, code, message: err.message }
      report.indexes.findings.push(finding)
      emit(options, 'swarmpack:scrub:release', finding)
      host.log.write('error', 'scrub:release', { ...finding })
    }
  }
}

export interface ScrubContext {
  restore: boolean
  revoked: 'report' | 'uninstall'
  rateBytesPerSec: number
  attestations?: (name: string, version: string, manifest: CID) => Promise<Uint8Array[]>
}

export async function scrub (host: OpsHost, ctx: ScrubContext, options: ScrubOptions = {}): Promise<ScrubReport> {
  const report = emptyReport()
  const throttle = new Throttle(options.rateBytesPerSec ?? ctx.rateBytesPerSec)
  const t0 = Date.now()
  try {
    if (options.store !== false) await scrubStore(host, report, throttle, options)
    // package directories change under apply and gc: check them between those
    if (options.installed !== false) await host.exclusive(async () => scrubInstalled(host, report, throttle, options, options.restore ?? ctx.restore))
    if (options.indexes !== false) {
      await scrubIndexes(host, report, options, ctx.attestations)
      const policy = options.revoked ?? ctx.revoked
      // revoked and removed releases; other refusals (an attestation threshold not met ...) are reported only
      const flagged = report.indexes.findings.filter(f => f.problem !== 'refused')
      if (policy === 'uninstall' && flagged.length > 0) {
        const g = await host.node.generations.current()
        const names = g === undefined ? [] : affectedModules(g, Object.keys(host.node.config.modules), new Set(flagged.map(f => f.name)))
        if (names.length > 0) {
          await host.node.uninstall(names, options.signal !== undefined ? { signal: options.signal } : {})
          report.indexes.uninstalled = names
          host.log.write('warn', 'scrub:uninstalled', { modules: names, because: flagged.map(f => `${f.name}@${f.version}: ${f.problem}`) })
        }
      }
    }
  } catch (err) {
    report.ms = Date.now() - t0
    report.ok = false
    if (isSwarmpackError(err, 'ERR_ABORTED') || isSwarmpackError(err, SwarmpackNodeErrorCode.STOPPED)) throw err
    throw nodeError(SwarmpackNodeErrorCode.SCRUB_FAILED, `scrub failed: ${(err as Error).message}`, { report }, err)
  }
  report.ms = Date.now() - t0
  report.throttledMs = Math.round(throttle.waitedMs)
  report.ok = report.store.corrupt.length === 0 && report.store.unrecoverable.length === 0 &&
    report.installed.findings.length === 0 && report.installed.unchecked.length === 0 && report.indexes.findings.length === 0
  return report
}
