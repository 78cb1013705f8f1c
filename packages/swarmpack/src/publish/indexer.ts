/**
 * The indexer: vouches for releases by listing them in a signed, versioned index. It adds releases
 * (checking their signature, their publisher's delegation chain when it has publisher roots, and
 * their manifests, whose description, categories and tags it copies into the entry), signs the
 * next index version and its head, keeps the blocks pinned (this version's and the previous one's,
 * so followers can check for silent drops), writes a static mirror directory (blocks, then the
 * head file) and puts the head into the DHT. Its state survives restarts (atomic writes).
 */
import { logger } from '@libp2p/logger'
import { encodeCborBlock, exportMirror, isSwarmpackError, loadManifest, readBlock, throwIfAborted, type Block, type BlockSource } from '@swarmpack/core'
import {
  buildIndex, isTombstone, keyIdOf, openRelease, patternMatches, verifyChain, MAX_ENTRY_DESCRIPTION, MAX_ENTRY_LABELS,
  type Ed25519PrivateKey, type IndexEntry, type IndexSlot, type KeyId, type PublisherRoot, type Revocations
} from '@swarmpack/trust'
import type { KadDHT } from '@libp2p/kad-dht'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { publishHeadToDht, publishHeadToMirror } from '../heads/publish.js'
import { PublishErrorCode, publishError } from './errors.js'
import { assertUnchanged, loadIndexerState, saveIndexerState, type IndexerStateData, type PublishedIndex } from './indexer-state.js'

const log = logger('swarmpack:indexer')

/** Block store the indexer reads and writes (FsBlockstore fits); pins keep published indexes. */
export type IndexerBlockstore = BlockSource & {
  put: (cid: CID, bytes: Uint8Array, options?: { signal?: AbortSignal }) => unknown
  pin?: (name: string, root: CID) => Promise<void>
}

export interface IndexerInit {
  key: Ed25519PrivateKey
  blockstore: IndexerBlockstore
  /** Where the indexer state lives. */
  stateDir: string
  /** The indexer id followers know it by (trust's indexer id). Default `main`. */
  indexer?: string
  /** Puts each new head here (a peer's kad-dht carrying the head format). */
  dht?: KadDHT
  /** Writes a static mirror here after each version (blocks, then `indexes/<id>/head`). */
  mirrorDir?: string
  /** Also mirror the packages (every block the listed manifests reach). Default true. */
  mirrorPackages?: boolean
  /** Lifetime of each index version and head. Default 7 days. */
  ttlMs?: number
  /**
   * Publisher roots the indexer accepts releases from (trust's policy shape). When given, a
   * release must hold a delegation chain to one of them (trust's ERR_TRUST_NO_CHAIN, …).
   */
  publishers?: PublisherRoot[]
  /** Reads blocks the store lacks (a release's manifest at a publisher's peer, …); stored when read. */
  getBlock?: (cid: CID, options?: { signal?: AbortSignal }) => Promise<Uint8Array>
  /** Force the shard count (a power of two); picked from the index size otherwise. */
  shards?: number
  now?: () => number
}

export type IndexerProgressEvents =
  ProgressEvent<'swarmpack:indexer:added', { name: string, version: string, release: CID }> |
  ProgressEvent<'swarmpack:indexer:signed', { indexer: string, version: number, index: CID, releases: number }> |
  ProgressEvent<'swarmpack:indexer:mirror', { dir: string, blocks: number, written: number }> |
  ProgressEvent<'swarmpack:indexer:dht', { stored: number }>

export interface AddResult {
  name: string
  version: string
  release: CID
  /** False when the index already listed this very release. */
  added: boolean
  /** Releases added or removed since the last publish. */
  pending: number
}

export interface IndexVersion {
  indexer: string
  version: number
  /** The signed head envelope (what the DHT and mirrors carry). */
  head: Uint8Array
  index: CID
  releases: number
  shards: number
  expires: number
  /** The mirror write, or why it failed (the version stands either way). */
  mirror?: { blocks: number, written: number } | { error: { code: string, message: string } }
  /** The DHT put, or why it failed. */
  dht?: { stored: number } | { error: { code: string, message: string } }
}

export interface IndexerListing { name: string, version: string, slot: IndexSlot }

export interface Indexer {
  readonly indexer: string
  readonly keyId: KeyId
  /** Latest published version (0 before the first). */
  readonly version: number
  /** The latest signed head, if any. */
  readonly head: Uint8Array | undefined
  /** Lists a signed release in the next version. Same name@version with another release: ERR_INDEX_CONFLICT. */
  add: (release: Uint8Array | CID, options?: { signal?: AbortSignal } & ProgressOptions<IndexerProgressEvents>) => Promise<AddResult>
  /** Withdraws name@version: it stays as a tombstone (followers refuse silent drops). */
  remove: (name: string, version: string, reason: string) => Promise<void>
  /** Revokes keys or certificates in the next version (they stay in later versions). */
  revoke: (revocations: Partial<Revocations>) => Promise<void>
  /** Signs and publishes the next version (also with nothing new: a fresh expiry). */
  publish: (options?: { signal?: AbortSignal, nextKeys?: KeyId[] } & ProgressOptions<IndexerProgressEvents>) => Promise<IndexVersion>
  /** Puts the current head into the DHT again (records age out). */
  republish: (options?: { signal?: AbortSignal }) => Promise<{ stored: number }>
  /** The entries of the next version. */
  entries: () => IndexerListing[]
  close: () => Promise<void>
}

const DEFAULT_TTL = 7 * 24 * 3600_000
const BUNDLE_TYPE = 'swarmpack/indexer-bundle@1'
const BUNDLE_LINKS = 8192
const INDEXER_ID_RE = /^[A-Za-z0-9_-]{1,128}$/

/** Opens (or creates) an indexer; its state continues from the last run. */
export async function createIndexer (init: IndexerInit): Promise<Indexer> {
  if (init.key?.type !== 'Ed25519') throw publishError(PublishErrorCode.PUBLISH_INVALID, 'the indexer needs an ed25519 signing key')
  const id = init.indexer ?? 'main'
  if (!INDEXER_ID_RE.test(id)) throw publishError(PublishErrorCode.PUBLISH_INVALID, `invalid indexer id ${JSON.stringify(id.slice(0, 80))}`)
  if (typeof init.stateDir !== 'string' || init.stateDir === '') throw publishError(PublishErrorCode.PUBLISH_INVALID, 'the indexer needs a stateDir')
  const keyId = keyIdOf(init.key)
  const now = init.now ?? Date.now
  const ttl = init.ttlMs ?? DEFAULT_TTL
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw publishError(PublishErrorCode.PUBLISH_INVALID, 'ttlMs must be a positive integer')
  const store = init.blockstore

  const loaded = await loadIndexerState(init.stateDir, id)
  if (loaded !== undefined && loaded.key !== keyId) {
    throw publishError(PublishErrorCode.INDEXER_STATE, `the indexer state of ${id} was written for key ${loaded.key}, not ${keyId}`, { indexer: id, stateKey: loaded.key, key: keyId })
  }
  const state: IndexerStateData = loaded ?? { indexer: id, key: keyId, entries: new Map(), revocations: { keys: [], certificates: [] }, pending: 0 }
  let closed = false
  // one operation at a time: adds and publishes never interleave their state writes
  let tail: Promise<unknown> = Promise.resolve()
  const serial = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) throw publishError(PublishErrorCode.INDEXER_CLOSED, `indexer ${id} is closed`)
    const run = tail.then(fn, fn)
    tail = run.catch(() => {})
    return await run
  }

  /** Applies a change to the entries and saves it; undone in memory when the save fails. */
  const change = async (apply: () => () => void): Promise<void> => {
    const undo = apply()
    state.pending++
    try {
      await saveIndexerState(init.stateDir, state)
    } catch (err) {
      undo()
      state.pending--
      throw err
    }
  }

  const read = async (cid: CID, signal?: AbortSignal): Promise<Uint8Array> => {
    try {
      return await readBlock(store, cid, { ...(signal !== undefined ? { signal } : {}) })
    } catch (err) {
      if (init.getBlock === undefined || !isSwarmpackError(err, 'ERR_NOT_FOUND')) throw err
      const bytes = await init.getBlock(cid, { ...(signal !== undefined ? { signal } : {}) })
      await store.put(cid, bytes) // the store verifies the bytes against the CID
      return bytes
    }
  }

  const add = async (release: Uint8Array | CID, options: { signal?: AbortSignal } & ProgressOptions<IndexerProgressEvents> = {}): Promise<AddResult> => serial(async () => {
    const { signal } = options
    throwIfAborted(signal)
    const bytes = release instanceof Uint8Array ? release : await read(release, signal)
    const r = openRelease(bytes)
    if (init.publishers !== undefined) {
      const roots = new Map<KeyId, string[]>()
      for (const p of init.publishers) if (patternMatches(p.pattern, r.name)) for (const k of p.roots) roots.set(k, [...(roots.get(k) ?? []), p.pattern])
      verifyChain(r.signer, r.proofs, {
        name: r.name, roots, now: now(), skew: 0, maxDepth: 8,
        revokedKeys: new Set(state.revocations.keys), revokedCertificates: new Set(state.revocations.certificates)
      })
    }
    const existing = state.entries.get(r.name)?.get(r.version)
    if (existing !== undefined) {
      if (!isTombstone(existing) && existing.release.equals(r.cid)) return { name: r.name, version: r.version, release: r.cid, added: false, pending: state.pending }
      throw publishError(PublishErrorCode.INDEX_CONFLICT, isTombstone(existing)
        ? `${r.name}@${r.version} was removed from index ${id} (${existing.removed}); publish a new version`
        : `index ${id} already lists ${r.name}@${r.version} as release ${existing.release.toString()}`, { name: r.name, version: r.version })
    }
    // the manifests must be there and agree with the release; their metadata goes into the entry
    const entry: IndexEntry = { release: r.cid, size: bytes.byteLength, variants: r.variants, dependencies: r.dependencies }
    const keys = Object.keys(r.variants).sort()
    for (const key of keys) {
      const { manifest } = await loadManifest(r.variants[key].manifest, { get: async cid => read(cid, signal) }, { ...(signal !== undefined ? { signal } : {}) })
      if (manifest.name !== r.name || manifest.version !== r.version || manifest.totalSize !== r.variants[key].size) {
        throw publishError(PublishErrorCode.PUBLISH_INVALID, `variant ${key} of ${r.name}@${r.version}: the manifest is ${manifest.name}@${manifest.version} of ${manifest.totalSize} bytes, the release says ${r.variants[key].size}`, { name: r.name, version: r.version, variant: key })
      }
      if (key === keys[0]) Object.assign(entry, catalogFields(manifest))
    }
    await store.put(r.cid, bytes)
    const versions = state.entries.get(r.name) ?? new Map<string, IndexSlot>()
    await change(() => {
      versions.set(r.version, entry)
      state.entries.set(r.name, versions)
      return () => {
        versions.delete(r.version)
        if (versions.size === 0) state.entries.delete(r.name)
      }
    })
    options.onProgress?.(new CustomProgressEvent('swarmpack:indexer:added', { name: r.name, version: r.version, release: r.cid }))
    log('%s: added %s@%s (%s)', id, r.name, r.version, r.cid)
    return { name: r.name, version: r.version, release: r.cid, added: true, pending: state.pending }
  })

  const remove = async (name: string, version: string, reason: string): Promise<void> => serial(async () => {
    const versions = state.entries.get(name)
    const slot = versions?.get(version)
    if (versions === undefined || slot === undefined) throw publishError(PublishErrorCode.PUBLISH_INVALID, `index ${id} does not list ${name}@${version}`, { name, version })
    if (isTombstone(slot)) return
    await change(() => {
      versions.set(version, { removed: reason })
      return () => { versions.set(version, slot) }
    })
  })

  const revoke = async (revocations: Partial<Revocations>): Promise<void> => serial(async () => {
    const keys = new Set([...state.revocations.keys, ...(revocations.keys ?? [])])
    const certificates = new Set([...state.revocations.certificates, ...(revocations.certificates ?? [])])
    const before = state.revocations
    await change(() => {
      state.revocations = { keys: [...keys], certificates: [...certificates] }
      return () => { state.revocations = before }
    })
  })

  const putHead = async (head: Uint8Array, signal?: AbortSignal): Promise<{ stored: number }> => {
    if (init.dht === undefined) throw publishError(PublishErrorCode.PUBLISH_INVALID, `indexer ${id} has no DHT`)
    const { stored } = await publishHeadToDht(init.dht, head, { ...(signal !== undefined ? { signal } : {}) })
    return { stored }
  }

  const publish = async (options: { signal?: AbortSignal, nextKeys?: KeyId[] } & ProgressOptions<IndexerProgressEvents> = {}): Promise<IndexVersion> => serial(async () => {
    const { signal } = options
    throwIfAborted(signal)
    await assertUnchanged(init.stateDir, state) // before signing: never fork the version line
    const version = (state.published?.version ?? 0) + 1
    const issued = now()
    const expires = issued + ttl
    const built = await buildIndex(init.key, {
      indexer: id, version, issued, expires, entries: state.entries, revocations: state.revocations,
      ...(options.nextKeys !== undefined ? { nextKeys: options.nextKeys } : {}),
      ...(init.shards !== undefined ? { shards: init.shards } : {})
    })
    for (const b of built.blocks) await store.put(b.cid, b.bytes, { ...(signal !== undefined ? { signal } : {}) })
    const live = liveEntries(state.entries)
    const manifests: CID[] = []
    for (const e of live) for (const v of Object.values(e.variants)) manifests.push(v.manifest)
    const bundle = await storeBundle(store, [built.index.cid, ...built.shards.map(s => s.cid), ...live.map(e => e.release), ...manifests])
    // pins: this version, and the previous one so followers can still compare against it
    if (store.pin !== undefined) {
      if (state.published !== undefined) await store.pin(`swarmpack-indexer:${id}:previous`, state.published.bundle)
      await store.pin(`swarmpack-indexer:${id}:current`, bundle)
    }
    const previous = { published: state.published, pending: state.pending }
    state.published = { version, head: built.head.bytes, index: built.index.cid, bundle, issued, expires } satisfies PublishedIndex
    state.pending = 0
    try {
      await saveIndexerState(init.stateDir, state)
    } catch (err) {
      Object.assign(state, previous)
      throw err
    }
    const result: IndexVersion = { indexer: id, version, head: built.head.bytes, index: built.index.cid, releases: live.length, shards: built.shards.length, expires }
    options.onProgress?.(new CustomProgressEvent('swarmpack:indexer:signed', { indexer: id, version, index: built.index.cid, releases: live.length }))
    log('%s: signed version %d (%d releases, %d shards)', id, version, live.length, built.shards.length)

    // blocks before the head, the mirror before the DHT: whoever sees the head finds what it names
    if (init.mirrorDir !== undefined) {
      try {
        const roots = init.mirrorPackages === false ? [built.index.cid, ...built.shards.map(s => s.cid), ...live.map(e => e.release)] : [bundle]
        const report = await exportMirror(store, roots, init.mirrorDir, { ...(signal !== undefined ? { signal } : {}) })
        await publishHeadToMirror(init.mirrorDir, built.head.bytes)
        result.mirror = { blocks: report.blocks, written: report.written }
        options.onProgress?.(new CustomProgressEvent('swarmpack:indexer:mirror', { dir: init.mirrorDir, blocks: report.blocks, written: report.written }))
      } catch (err) {
        throwIfAborted(signal)
        result.mirror = { error: describe(err) }
        log.error('%s: mirror export of version %d failed: %s', id, version, (err as Error).message)
      }
    }
    if (init.dht !== undefined) {
      try {
        result.dht = await putHead(built.head.bytes, signal)
        options.onProgress?.(new CustomProgressEvent('swarmpack:indexer:dht', { stored: result.dht.stored }))
      } catch (err) {
        throwIfAborted(signal)
        result.dht = { error: describe(err) }
        log.error('%s: DHT put of version %d failed: %s', id, version, (err as Error).message)
      }
    }
    return result
  })

  return {
    indexer: id,
    keyId,
    get version () { return state.published?.version ?? 0 },
    get head () { return state.published?.head },
    add,
    remove,
    revoke,
    publish,
    republish: async (options = {}) => serial(async () => {
      if (state.published === undefined) throw publishError(PublishErrorCode.PUBLISH_INVALID, `indexer ${id} has published nothing yet`)
      return await putHead(state.published.head, options.signal)
    }),
    entries: () => [...state.entries].flatMap(([name, versions]) => [...versions].map(([version, slot]) => ({ name, version, slot }))),
    close: async () => {
      if (closed) return
      await tail
      closed = true
    }
  }
}

function describe (err: unknown): { code: string, message: string } {
  return { code: isSwarmpackError(err) ? err.code : 'ERR_UNKNOWN', message: (err as Error)?.message ?? String(err) }
}

function liveEntries (entries: Map<string, Map<string, IndexSlot>>): IndexEntry[] {
  const out: IndexEntry[] = []
  for (const versions of entries.values()) for (const slot of versions.values()) if (!isTombstone(slot)) out.push(slot)
  return out
}

/** The catalog fields of an entry, from a manifest, within the index's bounds. */
export function catalogFields (m: { description: string, categories: string[], tags: string[] }): Pick<IndexEntry, 'description' | 'categories' | 'tags'> {
  const out: Pick<IndexEntry, 'description' | 'categories' | 'tags'> = {}
  const description = m.description.trim()
  if (description !== '') out.description = description.length > MAX_ENTRY_DESCRIPTION ? `${truncate(description, MAX_ENTRY_DESCRIPTION - 1)}…` : description
  const labels = (list: string[]): string[] => [...new Set(list.filter(l => l !== ''))].slice(0, MAX_ENTRY_LABELS)
  if (m.categories.length > 0) out.categories = labels(m.categories)
  if (m.tags.length > 0) out.tags = labels(m.tags)
  return out
}

/** At most `max` UTF-16 units of `text`, never splitting a character. */
function truncate (text: string, max: number): string {
  let out = ''
  for (const ch of text) {
    if (out.length + ch.length > max) break
    out += ch
  }
  return out
}

/**
 * Stores plain dag-cbor blocks that link every CID given (chained when there are many), so one pin
 * keeps them all and one mirror export walks them all. Returns the first block's CID.
 */
async function storeBundle (store: IndexerBlockstore, links: CID[]): Promise<CID> {
  let next: Block | undefined
  for (let end = links.length; end > 0 || next === undefined; end -= BUNDLE_LINKS) {
    const start = Math.max(0, end - BUNDLE_LINKS)
    const block: Block = encodeCborBlock(next === undefined ? { type: BUNDLE_TYPE, links: links.slice(start, end) } : { type: BUNDLE_TYPE, links: links.slice(start, end), next: next.cid })
    await store.put(block.cid, block.bytes)
    next = block
    if (start === 0) break
  }
  return next.cid
}
