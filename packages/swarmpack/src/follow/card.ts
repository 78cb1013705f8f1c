/**
 * The indexer card: a small JSON file a publishing server puts at the root of its mirror
 * (`swarmpack-indexer.json`) saying how to follow it: the indexer id, its keys, the publisher roots
 * it vouches for and peers to join the swarm through. A card only saves typing: the keys in it are
 * as good as the channel it came over, so `follow` can pin the expected key (`expectKey`) and the
 * CLI says so when it trusts a card on first use. `followIndexerConfig` writes what the card says
 * into a config file (comments kept) without dropping anything already there.
 */
import { readFile } from 'node:fs/promises'
import { isAbsolute, join, resolve } from 'node:path'
import { writeFileAtomic } from '@swarmpack/core'
import { z } from 'zod'
import { SwarmpackNodeErrorCode, nodeError } from '../errors.js'
import { editConfigFile, loadConfigFile } from '../config/load.js'
import type { DeploymentConfig } from '../config/schema.js'

export const INDEXER_CARD_FILE = 'swarmpack-indexer.json'
export const INDEXER_CARD_FORMAT = 'swarmpack-indexer-card@1'

const keyId = z.string().regex(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44,46}$/)
const cardSchema = z.object({
  format: z.literal(INDEXER_CARD_FORMAT),
  indexer: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
  keys: z.array(keyId).min(1).max(16),
  publishers: z.array(z.object({ pattern: z.string().min(1).max(214), roots: z.array(keyId).min(1).max(16) })).max(64).default([]),
  peers: z.array(z.string().regex(/^\/[a-z0-9]+\//)).max(64).default([])
})

export type IndexerCard = z.output<typeof cardSchema>

export async function writeIndexerCard (mirrorDir: string, card: Omit<IndexerCard, 'format'>): Promise<string> {
  const path = join(mirrorDir, INDEXER_CARD_FILE)
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify({ format: INDEXER_CARD_FORMAT, ...card }, null, 2) + '\n'))
  return path
}

function isUrl (s: string): boolean {
  return /^https?:\/\//i.test(s)
}

/** Reads the card of a mirror (an http(s) base URL or a directory). ERR_HEAD_SOURCE when unreachable, ERR_NOT_FOUND when absent. */
export async function readIndexerCard (source: string, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<IndexerCard> {
  let text: string
  if (isUrl(source)) {
    const url = new URL(INDEXER_CARD_FILE, source.endsWith('/') ? source : source + '/')
    const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 15_000), ...(options.signal !== undefined ? [options.signal] : [])])
    let res: Response
    try {
      res = await fetch(url, { signal, redirect: 'error' })
    } catch (err) {
      throw nodeError(SwarmpackNodeErrorCode.INDEX_UNAVAILABLE, `cannot reach ${url.href}: ${(err as Error).message}`, { url: url.href }, err)
    }
    if (res.status === 404) throw nodeError(SwarmpackNodeErrorCode.CARD_NOT_FOUND, `${url.href}: no indexer card (404)`, { url: url.href })
    if (!res.ok) throw nodeError(SwarmpackNodeErrorCode.INDEX_UNAVAILABLE, `${url.href}: HTTP ${res.status}`, { url: url.href, status: res.status })
    text = await res.text()
  } else {
    const path = join(resolve(source), INDEXER_CARD_FILE)
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      throw nodeError(SwarmpackNodeErrorCode.CARD_NOT_FOUND, `no indexer card at ${path}`, { path }, err)
    }
  }
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  const r = cardSchema.safeParse(json)
  if (!r.success) throw nodeError(SwarmpackNodeErrorCode.INVALID_ARGUMENT, `${source}: not an indexer card (${r.error.issues[0]?.message ?? 'not JSON'})`, { source })
  return r.data
}

export interface FollowSpec {
  indexer: string
  keys: string[]
  publishers?: Array<{ pattern: string, roots: string[] }>
  /** Mirror base URLs that carry `indexes/<id>/head` and the blocks. */
  mirrors?: string[]
  /** Mirror directories (absolute, or relative to the config file). */
  directories?: string[]
  peers?: string[]
}

/** The follow spec of a card read from `source` (a mirror URL or directory). */
export function specFromCard (card: IndexerCard, source: string): FollowSpec {
  const spec: FollowSpec = { indexer: card.indexer, keys: card.keys, publishers: card.publishers, peers: card.peers }
  if (isUrl(source)) spec.mirrors = [source.endsWith('/') ? source : source + '/']
  else spec.directories = [isAbsolute(source) ? source : resolve(source)]
  return spec
}

const union = <T>(a: T[], b: T[], key: (x: T) => string = x => JSON.stringify(x)): T[] => {
  const seen = new Set(a.map(key))
  return [...a, ...b.filter(x => !seen.has(key(x)))]
}

/**
 * Adds (or extends) a followed indexer in a config file: its keys and head sources, the publisher
 * roots it vouches for, its mirrors as block sources, its peers as bootstrap peers. Returns the new config.
 */
export async function followIndexerConfig (file: string, spec: FollowSpec): Promise<DeploymentConfig> {
  const before = await loadConfigFile(file)
  const raw = JSON.parse(JSON.stringify(before)) as DeploymentConfig
  const existing = raw.indexers.find(i => i.id === spec.indexer)
  const entry = {
    id: spec.indexer,
    keys: union(existing?.keys ?? [], spec.keys),
    heads: {
      dht: existing?.heads.dht ?? true,
      mirrors: union(existing?.heads.mirrors ?? [], spec.mirrors ?? []),
      directories: union(existing?.heads.directories ?? [], spec.directories ?? [])
    }
  }
  const indexers = existing !== undefined ? raw.indexers.map(i => i.id === spec.indexer ? entry : i) : [...raw.indexers, entry]
  await editConfigFile(file, ['indexers'], indexers)
  if ((spec.publishers ?? []).length > 0) await editConfigFile(file, ['trust', 'publishers'], union(raw.trust.publishers, spec.publishers ?? []))
  if ((spec.mirrors ?? []).length > 0) await editConfigFile(file, ['sources', 'mirrors'], union(raw.sources.mirrors, (spec.mirrors ?? []).map(url => ({ url, priority: 0, kind: 'mirror' as const })), m => m.url))
  if ((spec.directories ?? []).length > 0) await editConfigFile(file, ['sources', 'directories'], union(raw.sources.directories, (spec.directories ?? []).map(path => ({ path, priority: 0 })), d => d.path))
  if ((spec.peers ?? []).length > 0) await editConfigFile(file, ['sources', 'bootstrap'], union(raw.sources.bootstrap, spec.peers ?? []))
  return loadConfigFile(file)
}
