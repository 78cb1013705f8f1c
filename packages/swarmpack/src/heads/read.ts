/**
 * Reading an indexer's latest head from every configured source at once: each source bounded in
 * time, every head found checked (trust's verification, the accepted keys, rollback, equivocation,
 * expiry), the highest valid version wins, and the result says which source it came from and what
 * every other source answered. `followIndexHead` then hands the winner to the trust verifier,
 * which reads the index it names and moves the persisted state forward.
 */
import { logger } from '@libp2p/logger'
import { SwarmpackError, isSwarmpackError, throwIfAborted } from '@swarmpack/core'
import { TrustErrorCode, type KeyId, type TrustProgressEvents, type TrustVerifier, type UpdateResult, type VerifiedHead } from '@swarmpack/trust'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { equals } from 'uint8arrays/equals'
import type { Dispatcher } from 'undici'
import { PublishErrorCode, publishError } from '../publish/errors.js'
import { checkHead, type AcceptedHead } from './check.js'
import { DEFAULT_HEAD_SKEW_MS, indexHeadRecordFormat } from './format.js'
import { assertHeadSource, headSourceName, readHeadsFrom, type HeadSource, type HeadSourceKind } from './sources.js'

const log = logger('swarmpack:heads')

/** What one source answered. */
export interface HeadSourceReport {
  source: string
  kind: HeadSourceKind
  /** Versions of the valid heads it had. */
  versions: number[]
  /** Heads it had that were refused, or its failure (code and message). */
  refused: Array<{ code: string, message: string, version?: number }>
  /** True when it had nothing for the indexer. */
  missed: boolean
  ms: number
}

export type HeadProgressEvents =
  ProgressEvent<'swarmpack:heads:source', HeadSourceReport> |
  ProgressEvent<'swarmpack:heads:selected', { indexer: string, version: number, source: string, kind: HeadSourceKind }>

export interface ReadIndexHeadOptions extends ProgressOptions<HeadProgressEvents> {
  /** Keys whose signatures are accepted (the DHT is searched under each). */
  keys: readonly KeyId[]
  sources: readonly HeadSource[]
  /** The head accepted before: older heads are rollbacks, different ones of its version equivocation. */
  accepted?: AcceptedHead
  /** Per-source bound in ms. Default 15 s. */
  timeoutMs?: number
  now?: () => number
  skewMs?: number
  /** undici dispatcher for mirrors (proxies, TLS); http-provider's `createDispatcher` makes one. */
  dispatcher?: Dispatcher
  signal?: AbortSignal
}

export interface IndexHeadReading {
  indexer: string
  head: VerifiedHead
  /** The head envelope, bytes as received. */
  bytes: Uint8Array
  /** Source it was taken from (the first that had it). */
  source: string
  kind: HeadSourceKind
  /** False when it is the head already accepted. */
  newer: boolean
  /** Every source's answer. */
  sources: HeadSourceReport[]
  /** Other valid heads newer than the accepted one, newest first (fallbacks when the winner's index is unavailable). */
  alternatives: Array<{ version: number, bytes: Uint8Array, source: string, kind: HeadSourceKind }>
}

/** When no head is valid, the strongest reason is the error raised. */
const PRECEDENCE: string[] = [
  TrustErrorCode.EQUIVOCATION, TrustErrorCode.ROLLBACK, TrustErrorCode.FREEZE, TrustErrorCode.BAD_SIGNATURE,
  TrustErrorCode.MISMATCH, TrustErrorCode.EXPIRED, TrustErrorCode.PAYLOAD_TYPE, TrustErrorCode.MALFORMED
]

interface Candidate { head: VerifiedHead, bytes: Uint8Array, newer: boolean, source: string, kind: HeadSourceKind }

/**
 * Reads `indexer`'s heads from every source concurrently and returns the highest valid one.
 * Throws ERR_TRUST_EQUIVOCATION when sources hold two different heads of the winning version,
 * the strongest ERR_TRUST_* reason when every head found was refused, ERR_HEAD_NOT_FOUND when no
 * source had one (details.sources lists what each answered).
 */
export async function readIndexHead (indexer: string, options: ReadIndexHeadOptions): Promise<IndexHeadReading> {
  const { signal } = options
  throwIfAborted(signal)
  if (options.sources.length === 0) throw publishError(PublishErrorCode.HEAD_SOURCE, 'no head sources given', { indexer })
  if (options.keys.length === 0) throw publishError(PublishErrorCode.HEAD_SOURCE, `no keys given for indexer ${indexer}`, { indexer })
  for (const source of options.sources) assertHeadSource(source, indexer)
  const now = options.now ?? Date.now
  const skewMs = options.skewMs ?? DEFAULT_HEAD_SKEW_MS
  const timeoutMs = options.timeoutMs ?? 15_000
  const format = indexHeadRecordFormat({ now, skewMs })
  const candidates: Candidate[] = []
  /** Heads of the accepted version with other contents: proof the indexer equivocated. */
  const twins: Array<{ bytes: Uint8Array, source: string }> = []

  const reports = await Promise.all(options.sources.map(async (source): Promise<HeadSourceReport> => {
    const name = headSourceName(source)
    const report: HeadSourceReport = { source: name, kind: source.kind, versions: [], refused: [], missed: false, ms: 0 }
    const started = Date.now()
    const bound = AbortSignal.timeout(timeoutMs)
    const sourceSignal = signal !== undefined ? AbortSignal.any([signal, bound]) : bound
    try {
      const raws = await readHeadsFrom(source, indexer, options.keys, { signal: sourceSignal, format, ...(options.dispatcher !== undefined ? { dispatcher: options.dispatcher } : {}) })
      report.missed = raws.length === 0
      for (const raw of raws) {
        try {
          const { head, newer } = checkHead(raw.bytes, { indexer, keys: options.keys, accepted: options.accepted, now: now(), skewMs })
          report.versions.push(head.version)
          candidates.push({ head, bytes: raw.bytes, newer, source: name, kind: source.kind })
        } catch (err) {
          if (isSwarmpackError(err, TrustErrorCode.EQUIVOCATION)) twins.push({ bytes: raw.bytes, source: name })
          report.refused.push(describe(err))
        }
      }
    } catch (err) {
      throwIfAborted(signal)
      if (bound.aborted) report.refused.push({ code: PublishErrorCode.HEAD_TIMEOUT, message: `no answer within ${timeoutMs} ms` })
      else if (isSwarmpackError(err, 'ERR_DHT_RECORD_NOT_FOUND')) {
        report.missed = true
        for (const r of (err.details.refused as Array<{ code?: string, message: string }> | undefined) ?? []) report.refused.push({ code: r.code ?? 'ERR_DHT_INVALID_RECORD', message: r.message })
      } else report.refused.push(describe(err))
    }
    report.ms = Date.now() - started
    options.onProgress?.(new CustomProgressEvent('swarmpack:heads:source', report))
    log('%s: %s from %s (%d ms)', indexer, report.versions.length > 0 ? `versions ${report.versions.join(',')}` : report.missed ? 'miss' : 'refused', name, report.ms)
    return report
  }))
  throwIfAborted(signal)

  if (twins.length > 0 && options.accepted !== undefined) {
    throw new SwarmpackError(TrustErrorCode.EQUIVOCATION, `${twins[0].source} holds a head of ${indexer} with the accepted version ${options.accepted.version} but other contents`, {
      details: { indexer, version: options.accepted.version, heads: [options.accepted.head, twins[0].bytes], againstAccepted: true, sources: reports }
    })
  }
  if (candidates.length === 0) {
    const refusals = reports.flatMap(r => r.refused.map(x => ({ ...x, source: r.source })))
    const strongest = PRECEDENCE.map(code => refusals.find(r => r.code === code)).find(r => r !== undefined)
    if (strongest !== undefined) {
      throw new SwarmpackError(strongest.code, `${strongest.source}: ${strongest.message}`, { details: { indexer, sources: reports } })
    }
    throw publishError(PublishErrorCode.HEAD_NOT_FOUND, `no source has a head for indexer ${indexer} (tried ${reports.map(r => r.source).join(', ')})`, { indexer, sources: reports })
  }
  const top = Math.max(...candidates.map(c => c.head.version))
  const best = candidates.filter(c => c.head.version === top)
  const twin = best.find(c => !equals(c.head.payload, best[0].head.payload))
  if (twin !== undefined) {
    throw new SwarmpackError(TrustErrorCode.EQUIVOCATION, `indexer ${indexer} signed two different heads with version ${top} (${best[0].source}, ${twin.source})`, {
      details: { indexer, version: top, heads: [best[0].bytes, twin.bytes], againstAccepted: false, sources: reports }
    })
  }
  const win = best[0]
  options.onProgress?.(new CustomProgressEvent('swarmpack:heads:selected', { indexer, version: top, source: win.source, kind: win.kind }))
  const alternatives: IndexHeadReading['alternatives'] = []
  for (const c of candidates.filter(c => c.newer && c.head.version < top).sort((a, b) => b.head.version - a.head.version)) {
    if (!alternatives.some(a => a.version === c.head.version)) alternatives.push({ version: c.head.version, bytes: c.bytes, source: c.source, kind: c.kind })
  }
  return { indexer, head: win.head, bytes: win.bytes, source: win.source, kind: win.kind, newer: win.newer, sources: reports, alternatives }
}

function describe (err: unknown): { code: string, message: string } {
  return { code: isSwarmpackError(err) ? err.code : 'ERR_UNKNOWN', message: (err as Error)?.message ?? String(err) }
}

export interface FollowIndexHeadOptions extends Omit<ReadIndexHeadOptions, 'keys' | 'accepted' | 'skewMs' | 'onProgress'> {
  onProgress?: (evt: HeadProgressEvents | TrustProgressEvents) => void
}

export interface FollowResult extends IndexHeadReading {
  /** The trust verifier's answer (changed: false when the head was the accepted one). */
  update: UpdateResult
  /** Newer heads passed over because the blocks of their index could not be had. */
  passedOver: Array<{ version: number, source: string, code: string, message: string }>
}

/**
 * Reads the latest head of a followed indexer from the sources, using the verifier's policy and
 * state (accepted keys after rotation, the accepted version), and hands the winner to
 * `verifier.updateIndexer`, which verifies the whole index it names and persists it. A head that
 * equivocates against the accepted one is handed over too, so trust records the evidence.
 * The verifier's `getBlock` must be able to fetch the index blocks (the node's fetcher).
 */
export async function followIndexHead (verifier: TrustVerifier, indexer: string, options: FollowIndexHeadOptions): Promise<FollowResult> {
  const ix = verifier.policy.indexer(indexer)
  if (ix === undefined) throw new SwarmpackError(TrustErrorCode.POLICY, `indexer ${indexer} is not followed`, { details: { indexer } })
  const stored = await verifier.state.read(indexer)
  const sameKeys = stored !== undefined && stored.policyKeys.length === ix.keys.length && stored.policyKeys.every(k => ix.keys.includes(k))
  const keys = stored !== undefined && sameKeys ? stored.keys : ix.keys
  let reading: IndexHeadReading
  try {
    reading = await readIndexHead(indexer, { ...options, keys, skewMs: verifier.policy.skew, ...(stored !== undefined ? { accepted: { version: stored.version, head: stored.head } } : {}) })
  } catch (err) {
    const twin = isSwarmpackError(err, TrustErrorCode.EQUIVOCATION) ? findEquivocating(err) : undefined
    // let trust see the conflicting head: it keeps both as evidence and stops counting the indexer
    // (and throws its own ERR_TRUST_EQUIVOCATION)
    if (twin !== undefined) await verifier.updateIndexer(indexer, twin, options)
    throw err
  }
  // the newest head first; when its index cannot be fetched yet (a mirror or the swarm not caught
  // up), an older head that is still newer than the accepted one is better than none
  const passedOver: FollowResult['passedOver'] = []
  const tries = [{ version: reading.head.version, bytes: reading.bytes, source: reading.source, kind: reading.kind }, ...reading.alternatives]
  for (const [i, t] of tries.entries()) {
    try {
      const update = await verifier.updateIndexer(indexer, t.bytes, options)
      const head = i === 0 ? reading.head : checkHead(t.bytes, { indexer, keys, now: (options.now ?? Date.now)(), skewMs: verifier.policy.skew }).head
      return { ...reading, head, bytes: t.bytes, source: t.source, kind: t.kind, update, passedOver }
    } catch (err) {
      if (!isSwarmpackError(err, TrustErrorCode.MISSING_BLOCK) || i === tries.length - 1) throw err
      passedOver.push({ version: t.version, source: t.source, code: err.code, message: err.message })
      log('%s: version %d from %s passed over: %s', indexer, t.version, t.source, err.message)
    }
  }
  throw new Error('unreachable')
}

/** The head that equivocates against the accepted one, from an equivocation error. */
function findEquivocating (err: SwarmpackError): Uint8Array | undefined {
  const heads = err.details.heads as Uint8Array[] | undefined
  return err.details.againstAccepted === true ? heads?.[1] : undefined
}
