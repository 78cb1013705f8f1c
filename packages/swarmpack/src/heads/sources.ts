/**
 * Where index heads are read from: the DHT (under each accepted key of the indexer), static
 * mirrors over HTTP(S) and mirror directories (`indexes/<indexer>/head` in core's layout). Each
 * read is bounded in time and size; a source without the head is a miss, never a hang.
 */
import { CoreErrorCode, FsProvider, MAX_INDEX_HEAD_SIZE, SwarmpackError, isSwarmpackError, mirrorIndexHeadPath, throwIfAborted } from '@swarmpack/core'
import { getHeadRecords, indexHeadKey, type HeadRecordFormat } from '@swarmpack/dht-provider'
import { request, type Dispatcher } from 'undici'
import type { KadDHT } from '@libp2p/kad-dht'
import { PublishErrorCode, publishError } from '../publish/errors.js'

export type HeadSourceKind = 'dht' | 'mirror' | 'dir'

/** A place heads are read from. `name` labels it in results and progress events. */
export type HeadSource =
  | { kind: 'dht', dht: KadDHT, name?: string }
  | { kind: 'mirror', url: string, name?: string, headers?: Record<string, string> }
  | { kind: 'dir', path: string, name?: string }

export function headSourceName (source: HeadSource): string {
  if (source.name !== undefined) return source.name
  switch (source.kind) {
    case 'dht': return 'dht'
    case 'mirror': return `mirror:${redact(source.url)}`
    case 'dir': return `dir:${source.path}`
    default: throw publishError(PublishErrorCode.HEAD_SOURCE, `unknown head source kind ${JSON.stringify((source as { kind?: unknown }).kind)}`)
  }
}

function redact (url: string): string {
  try {
    const u = new URL(url)
    u.username = ''
    u.password = ''
    return u.toString()
  } catch {
    return url
  }
}

/** Checks a source's configuration (ERR_HEAD_SOURCE) before anything is read. */
export function assertHeadSource (source: HeadSource, indexer: string): void {
  headSourceName(source)
  if (source.kind === 'mirror') mirrorHeadUrl(source.url, indexer)
  else if (source.kind === 'dir' && (typeof source.path !== 'string' || source.path === '')) throw publishError(PublishErrorCode.HEAD_SOURCE, 'a dir source needs a path')
  else if (source.kind === 'dht' && typeof source.dht?.get !== 'function') throw publishError(PublishErrorCode.HEAD_SOURCE, 'a dht source needs a kad-dht')
}

export interface SourceReadOptions {
  signal: AbortSignal
  dispatcher?: Dispatcher
  /** For DHT sources: the record format (validation happens in the DHT query). */
  format: HeadRecordFormat
}

/** Raw head bytes found at one source (unverified but for DHT records, which passed the format). */
export interface RawHead { bytes: Uint8Array, from?: string }

/** The URL of an indexer's head on a static mirror. */
export function mirrorHeadUrl (base: string, indexer: string): string {
  let u: URL
  try {
    u = new URL(base.endsWith('/') ? base : `${base}/`)
  } catch (err) {
    throw publishError(PublishErrorCode.HEAD_SOURCE, `invalid mirror URL ${JSON.stringify(redact(base))}`, {}, err)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw publishError(PublishErrorCode.HEAD_SOURCE, `mirror URL must be http(s): ${redact(base)}`)
  return new URL(mirrorIndexHeadPath(indexer), u).toString()
}

/**
 * Reads the heads a source holds for `indexer` (DHT: under each of `keys`). Resolves with [] on a
 * miss (404, no file, no record); rejects with a typed error when the source failed.
 */
export async function readHeadsFrom (source: HeadSource, indexer: string, keys: readonly string[], options: SourceReadOptions): Promise<RawHead[]> {
  throwIfAborted(options.signal)
  switch (source.kind) {
    case 'dht': return await readDht(source.dht, keys, options)
    case 'mirror': return await readMirror(source.url, indexer, source.headers, options)
    case 'dir': return await readDir(source.path, indexer, options.signal)
    default: throw publishError(PublishErrorCode.HEAD_SOURCE, 'unknown head source kind')
  }
}

async function readDht (dht: KadDHT, keys: readonly string[], options: SourceReadOptions): Promise<RawHead[]> {
  const out: RawHead[] = []
  let failure: unknown
  for (const key of keys) {
    try {
      const hits = await getHeadRecords(dht, indexHeadKey(key), options.format, { signal: options.signal })
      for (const h of hits) out.push({ bytes: h.value, ...(h.from !== undefined ? { from: h.from } : {}) })
    } catch (err) {
      throwIfAborted(options.signal)
      // not found is a miss; refused records are reported by the caller's own checks elsewhere
      if (!isSwarmpackError(err, 'ERR_DHT_RECORD_NOT_FOUND')) failure = err
      else if (Array.isArray(err.details.refused) && err.details.refused.length > 0) failure = err
    }
  }
  if (out.length === 0 && failure !== undefined) throw failure
  return out
}

async function readMirror (base: string, indexer: string, headers: Record<string, string> | undefined, options: SourceReadOptions): Promise<RawHead[]> {
  const url = mirrorHeadUrl(base, indexer)
  let res: Dispatcher.ResponseData<unknown>
  try {
    res = await request(url, {
      method: 'GET',
      signal: options.signal,
      headers: { accept: 'application/octet-stream', ...headers },
      // redirects: only when the dispatcher follows them (http-provider's does, up to 3)
      ...(options.dispatcher !== undefined ? { dispatcher: options.dispatcher } : {})
    })
  } catch (err) {
    throwIfAborted(options.signal)
    throw publishError(PublishErrorCode.HEAD_NOT_FOUND, `cannot reach ${redact(url)}: ${(err as Error).message}`, { url: redact(url) }, err)
  }
  if (res.statusCode === 404 || res.statusCode === 410) {
    await res.body.dump().catch(() => {})
    return []
  }
  if (res.statusCode !== 200) {
    await res.body.dump().catch(() => {})
    throw publishError(PublishErrorCode.HEAD_NOT_FOUND, `${redact(url)} answered ${res.statusCode}`, { url: redact(url), status: res.statusCode })
  }
  const declared = Number(res.headers['content-length'])
  if (Number.isFinite(declared) && declared > MAX_INDEX_HEAD_SIZE) {
    res.body.destroy()
    throw tooLarge(url)
  }
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body) {
    size += (chunk as Uint8Array).byteLength
    if (size > MAX_INDEX_HEAD_SIZE) {
      res.body.destroy()
      throw tooLarge(url)
    }
    chunks.push(chunk as Uint8Array)
  }
  return [{ bytes: concat(chunks, size) }]
}

function tooLarge (url: string): SwarmpackError {
  return new SwarmpackError(CoreErrorCode.BLOCK_TOO_LARGE, `head at ${redact(url)} is larger than ${MAX_INDEX_HEAD_SIZE} bytes`, { details: { url: redact(url) } })
}

function concat (chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size)
  let at = 0
  for (const c of chunks) { out.set(c, at); at += c.byteLength }
  return out
}

async function readDir (dir: string, indexer: string, signal: AbortSignal): Promise<RawHead[]> {
  try {
    // core's reader: capped at MAX_INDEX_HEAD_SIZE, never more read than that
    return [{ bytes: await new FsProvider(dir).getIndexHead(indexer, { signal }) }]
  } catch (err) {
    if (isSwarmpackError(err, CoreErrorCode.NOT_FOUND)) return []
    throw err
  }
}
