/**
 * The indexer's persisted state: the last published version (its head and index), the entries of
 * the next version (published ones plus those added since), and revocations.
 *
 *   <stateDir>/indexer-<id>.state   dag-cbor, replaced atomically (temp file, fsync, rename), mode 0600
 *
 * Written after every add and after every publish, so a restart continues where the last run
 * stopped: at the next version, with whatever was added but not yet published.
 */
import { readFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { writeFileAtomic } from '@swarmpack/core'
import type { IndexSlot, Revocations } from '@swarmpack/trust'
import { CID } from 'multiformats/cid'
import { equals } from 'uint8arrays/equals'
import { PublishErrorCode, publishError } from './errors.js'

export const INDEXER_STATE_FORMAT = 'swarmpack/indexer-state@1'

export interface PublishedIndex {
  version: number
  /** The signed head envelope. */
  head: Uint8Array
  index: CID
  /** Root of the block bundle that reaches the index, its shards, the releases and their manifests (pinned, exported). */
  bundle: CID
  issued: number
  expires: number
}

export interface IndexerStateData {
  indexer: string
  /** Key id that signs. */
  key: string
  /** Latest published version, if any. */
  published?: PublishedIndex
  /** The entries of the next version. */
  entries: Map<string, Map<string, IndexSlot>>
  revocations: Revocations
  /** Releases added or removed since the last publish. */
  pending: number
  /** The file as this process last read or wrote it (undefined: none yet). */
  onDisk?: Uint8Array
}

export function statePath (stateDir: string, indexer: string): string {
  return join(stateDir, `indexer-${indexer}.state`)
}

function corrupt (path: string, why: string, cause?: unknown): Error {
  return publishError(PublishErrorCode.INDEXER_STATE, `indexer state ${path} is unreadable: ${why}`, { path }, cause)
}

async function readState (path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined
    throw corrupt(path, (err as Error).message, err)
  }
}

export async function loadIndexerState (stateDir: string, indexer: string): Promise<IndexerStateData | undefined> {
  const path = statePath(stateDir, indexer)
  const bytes = await readState(path)
  if (bytes === undefined) return undefined
  let raw: any
  try { raw = dagCbor.decode(bytes) } catch (err) { throw corrupt(path, 'not dag-cbor', err) }
  if (raw?.format !== INDEXER_STATE_FORMAT) throw corrupt(path, 'unknown format')
  if (raw.indexer !== indexer || typeof raw.key !== 'string') throw corrupt(path, 'names another indexer')
  const entries = new Map<string, Map<string, IndexSlot>>()
  for (const [name, versions] of Object.entries(raw.entries ?? {})) {
    entries.set(name, new Map(Object.entries(versions as Record<string, IndexSlot>)))
  }
  const state: IndexerStateData = {
    indexer,
    key: raw.key,
    entries,
    revocations: { keys: raw.revocations?.keys ?? [], certificates: raw.revocations?.certificates ?? [] },
    pending: typeof raw.pending === 'number' ? raw.pending : 0,
    onDisk: bytes
  }
  if (raw.published != null) {
    const p = raw.published
    if (typeof p.version !== 'number' || !(p.head instanceof Uint8Array) || CID.asCID(p.index) === null || CID.asCID(p.bundle) === null) throw corrupt(path, 'bad published record')
    state.published = { version: p.version, head: p.head, index: CID.asCID(p.index)!, bundle: CID.asCID(p.bundle)!, issued: p.issued, expires: p.expires }
  }
  return state
}

/**
 * Writes the state. If the file changed since this process last read or wrote it, another
 * process runs the same indexer: writing (and signing on) would fork its versions, which followers
 * see as equivocation, so ERR_INDEXER_STATE instead.
 */
export async function saveIndexerState (stateDir: string, state: IndexerStateData): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 })
  await assertUnchanged(stateDir, state)
  const entries: Record<string, Record<string, IndexSlot>> = {}
  for (const [name, versions] of state.entries) entries[name] = Object.fromEntries(versions)
  const value: Record<string, unknown> = {
    format: INDEXER_STATE_FORMAT,
    indexer: state.indexer,
    key: state.key,
    entries,
    revocations: state.revocations,
    pending: state.pending
  }
  if (state.published !== undefined) value.published = { ...state.published }
  // not a block (it may exceed 1 MiB): plain dag-cbor
  const bytes = dagCbor.encode(value)
  await writeFileAtomic(statePath(stateDir, state.indexer), bytes, { mode: 0o600, syncDir: true })
  state.onDisk = bytes
}

/** ERR_INDEXER_STATE when the state file is not what this process last saw. */
export async function assertUnchanged (stateDir: string, state: IndexerStateData): Promise<void> {
  const path = statePath(stateDir, state.indexer)
  const now = await readState(path)
  const same = now === undefined ? state.onDisk === undefined : state.onDisk !== undefined && equals(now, state.onDisk)
  if (!same) throw publishError(PublishErrorCode.INDEXER_STATE, `indexer state ${path} was changed by another process; one indexer process per state directory`, { path })
}
