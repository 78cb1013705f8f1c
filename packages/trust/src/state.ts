/**
 * Persisted per-indexer trust state: the last accepted head (its bytes, as signed), its version,
 * the index it names and the keys currently accepted for the indexer (after any rotation).
 *
 *   <dir>/<indexer>.state                      dag-cbor, replaced atomically, mode 0600
 *   <dir>/<indexer>.state.lock                 held (proper-lockfile) while an update re-reads and writes
 *   <dir>/evidence/<indexer>-<version>-<h>.cbor two conflicting signed heads (equivocation)
 *
 * Several verifiers (processes) may share one directory: each verifies a head against the state it
 * read, then takes the indexer's lock, re-reads the state and, if it moved meanwhile, checks again
 * against what is on disk before writing.
 * The state file only ever moves forward, and only after every check on a new head passed.
 * Evidence is written beside it, never into it, so a refused head leaves the state file as it was.
 */
import { throwIfAborted, writeFileAtomic } from '@swarmpack/core'
import lockfile from 'proper-lockfile'
import { createHash } from 'node:crypto'
import { mkdir, readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { decodeStrict, encodeCanonical } from './cbor.js'
import { TrustErrorCode, trustError } from './errors.js'
import { assertIndexerId } from './index-record.js'
import type { KeyId } from './keys.js'
import { asBytes, asCid, asObject, asStringList, asUint, expectKeys } from './schema.js'

export interface IndexerState {
  indexer: string
  version: number
  /** The accepted head envelope, bytes as received. */
  head: Uint8Array
  index: CID
  /** Keys accepted for the next head (the policy's, or the latest rotation's). */
  keys: KeyId[]
  /**
   * The policy's keys for this indexer when the state was written. When the administrator changes
   * them, the policy wins over any rotation recorded here (the out-of-band reset).
   */
  policyKeys: KeyId[]
  /** When it was accepted (the injected clock). */
  updated: number
}

export interface Evidence {
  indexer: string
  version: number
  /** The two signed heads, bytes as received: the stored one first. */
  heads: [Uint8Array, Uint8Array]
  detected: number
}

const STATE_MAX_BYTES = 64 * 1024
/** How long an update waits for another process's lock on the same indexer (held for a re-read, a drop check and one write). */
const LOCK_WAIT_MS = 60_000
/** A lock not refreshed for this long belongs to a dead process and is taken over (proper-lockfile refreshes it every half). */
const LOCK_STALE_MS = 20_000
const LOCK_POLL_MS = 25

/** A held lock: `release()` frees it; `lost` is set if the lock was taken from us (then nothing may be written). */
export interface StateLock { release: () => Promise<void>, lost: () => Error | undefined }

export class TrustStateStore {
  readonly dir: string

  constructor (dir: string) {
    this.dir = dir
  }

  private statePath (indexer: string): string {
    return join(this.dir, `${assertIndexerId(indexer)}.state`)
  }

  async read (indexer: string): Promise<IndexerState | undefined> {
    let bytes: Uint8Array
    try {
      bytes = await readFile(this.statePath(indexer))
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined
      throw err
    }
    try {
      const obj = asObject(decodeStrict(bytes, { maxBytes: STATE_MAX_BYTES, what: 'trust state' }), 'trust state')
      expectKeys(obj, 'trust state', ['indexer', 'version', 'head', 'index', 'keys', 'policyKeys', 'updated'])
      if (obj.indexer !== indexer) throw new Error('state file names another indexer')
      return {
        indexer,
        version: asUint(obj.version, 'trust state.version'),
        head: asBytes(obj.head, 'trust state.head', STATE_MAX_BYTES),
        index: asCid(obj.index, 'trust state.index'),
        keys: asStringList(obj.keys, 'trust state.keys', 16, 80),
        policyKeys: asStringList(obj.policyKeys, 'trust state.policyKeys', 64, 80),
        updated: asUint(obj.updated, 'trust state.updated')
      }
    } catch (err) {
      throw trustError(TrustErrorCode.MALFORMED, `trust state for ${indexer} is corrupt`, { indexer }, err)
    }
  }

  async write (state: IndexerState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(this.statePath(state.indexer), encodeCanonical({ ...state }), { mode: 0o600, syncDir: true })
  }

  /** Takes the cross-process lock of one indexer's state, waiting at most LOCK_WAIT_MS (and no longer than `signal`). */
  async lock (indexer: string, signal?: AbortSignal): Promise<StateLock> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const path = this.statePath(indexer)
    const deadline = Date.now() + LOCK_WAIT_MS
    let lost: Error | undefined
    for (;;) {
      throwIfAborted(signal)
      try {
        const release = await lockfile.lock(path, { realpath: false, stale: LOCK_STALE_MS, retries: 0, onCompromised: (err) => { lost = err } })
        return { release: async () => { await release().catch(() => {}) }, lost: () => lost }
      } catch (err) {
        if ((err as { code?: string }).code !== 'ELOCKED') throw err
        if (Date.now() >= deadline) throw trustError(TrustErrorCode.STATE_LOCKED, `trust state of ${indexer} stayed locked for ${LOCK_WAIT_MS} ms (${path}.lock)`, { indexer, lock: `${path}.lock` })
      }
      await new Promise(resolve => setTimeout(resolve, LOCK_POLL_MS))
    }
  }

  async recordEvidence (evidence: Evidence): Promise<string> {
    const dir = join(this.dir, 'evidence')
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const h = createHash('sha256').update(evidence.heads[1]).digest('hex').slice(0, 16)
    const path = join(dir, `${assertIndexerId(evidence.indexer)}-${evidence.version}-${h}.cbor`)
    await writeFileAtomic(path, encodeCanonical({ ...evidence }), { mode: 0o600, syncDir: true })
    return path
  }

  /** Equivocation evidence recorded against an indexer. */
  async evidence (indexer: string): Promise<Evidence[]> {
    const dir = join(this.dir, 'evidence')
    let names: string[]
    try { names = await readdir(dir) } catch { return [] }
    const out: Evidence[] = []
    for (const name of names.filter(n => n.startsWith(`${indexer}-`) && n.endsWith('.cbor')).sort()) {
      const obj = asObject(decodeStrict(await readFile(join(dir, name)), { maxBytes: STATE_MAX_BYTES * 2, what: 'evidence' }), 'evidence')
      if (obj.indexer !== indexer) continue
      const heads = obj.heads as [Uint8Array, Uint8Array]
      out.push({ indexer, version: asUint(obj.version, 'evidence.version'), heads, detected: asUint(obj.detected, 'evidence.detected') })
    }
    return out
  }
}
